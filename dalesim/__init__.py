"""dalesim from Python: launch sweeps, simulate trained replicas and find their fixed points.

    import dalesim
    dalesim.validate("data/sweeps/demo.toml")              # a path, TOML text or a dict
    run = dalesim.run(sweep, "out.h5", backend="auto")       # trains; returns dalesim.open("out.h5")
    sim = dalesim.simulate("out.h5", replica=3, trials=64)   # xarray.Dataset: v, r, z, loss, ...
    fp = dalesim.fixed_points("out.h5", replica=3)           # xarray.Dataset: v, eigenvalues, stable, ...
    tr = dalesim.trials("perceptual_dm", 32, seed=0)         # xarray.Dataset: inputs, targets, mask

A thin layer over the `dalesim` program: every call runs one command and reads the HDF5 file it
writes (docs/analysis.md says why). The program is found through $DALESIM_BINARY, the build/
folder of the source tree this package sits in, or PATH. Needs numpy and h5py; xarray for the
labelled results and the analysis package (dalesim_analysis) for dalesim.open.
"""
from ._api import (DalesimError, BadInput, binary, validate, run, open, trials, write_trials, simulate,
                   fixed_points, sweep_text)

__all__ = ["DalesimError", "BadInput", "binary", "validate", "run", "open", "trials", "write_trials", "simulate",
           "fixed_points", "sweep_text"]
