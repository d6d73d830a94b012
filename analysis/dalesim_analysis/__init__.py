"""dalesim_analysis: load a dalesim output file (HDF5, docs/hdf5-layout.md) into pandas tables and
xarray datasets, summarise conditions over seeds, draw the sweep's figures and write a one-page
HTML report.

    import dalesim_analysis as da
    run = da.load("demo.h5")
    run.history_table(["loss", "alpha"])          # tidy: one row per (step, replica)
    da.condition_final(run, "alpha")              # mean and interval over the replicas per condition
    da.alpha_moves(run)                           # per condition: alpha up / down, sign test, bimodal
    da.figures.alpha_trajectories(run).savefig("alpha.png")
    da.write_report("demo.h5", "report.html")
    da.outputs_vs_targets(sim); da.eigenvalue_plot(fp); da.fixed_points_pca(fp)   # dalesim.simulate / fixed_points

Command line: python3 -m dalesim_analysis {report,status,summary} OUT.h5

Needs numpy, h5py, matplotlib, pandas and xarray (Debian: python3-numpy python3-h5py
python3-matplotlib python3-pandas python3-xarray). They are imported on first use, so that
`python3 -m dalesim_analysis` can name a missing one instead of failing on import.
"""
import importlib

# public name -> (submodule, attribute or None for the submodule itself)
_LAZY = {
    "Run": ("loading", "Run"),
    "load": ("loading", "load"),
    "figures": ("figures", None),
    "condition_curves": ("stats", "condition_curves"),
    "condition_final": ("stats", "condition_final"),
    "conditions": ("stats", "conditions"),
    "summarize": ("stats", "summarize"),
    "interval": ("stats", "interval"),
    "alpha_change": ("stats", "alpha_change"),
    "alpha_moves": ("stats", "alpha_moves"),
    "beats_baseline": ("stats", "beats_baseline"),
    "stats": ("stats", None),
    "read_progress": ("progress", "read_progress"),
    "write_report": ("report", "write_report"),
    "render_report": ("report", "render_report"),
    "dynamics": ("dynamics", None),
    "outputs_vs_targets": ("dynamics", "outputs_vs_targets"),
    "eigenvalue_plot": ("dynamics", "eigenvalue_plot"),
    "fixed_points_pca": ("dynamics", "fixed_points_pca"),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'dalesim_analysis' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(f".{module}", __name__)
    return value if attr is None else getattr(value, attr)
