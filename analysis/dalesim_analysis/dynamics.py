"""Figures of a trained network's dynamics, from dalesim.simulate and dalesim.fixed_points (or the
files `dalesim simulate` and `dalesim fixedpoints` write): outputs against targets, the
Jacobian's eigenvalues at each fixed point in the complex plane, and the fixed points over the
principal components of the trajectories. Each takes the xarray.Dataset that dalesim.simulate or
dalesim.fixed_points returns and gives a matplotlib Figure.
"""
import numpy as np
from matplotlib.figure import Figure


def _figure(width, height):
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.missing = None
    fig.notes = []
    return fig


def _fixed_points(fp):
    if not hasattr(fp, "data_vars"):
        raise TypeError("pass the xarray.Dataset that dalesim.fixed_points returns")
    return fp


def outputs_vs_targets(sim, trials=(0, 1, 2), outputs=None):
    """Network outputs z (solid) against the targets (dashed) over time, one panel per trial, with
    the masked-out steps shaded; the title gives the trial's loss and its condition."""
    trials = [t for t in trials if t < sim.sizes["trial"]]
    fig = _figure(3.6 * len(trials), 2.8)
    axes = fig.subplots(1, len(trials), squeeze=False)[0]
    time = sim["time"].values
    n_out = sim.sizes["output"]
    outputs = range(n_out) if outputs is None else outputs
    classes = sim["targets"].ndim == 2
    colors = [f"C{k}" for k in range(10)]
    for ax, t in zip(axes, trials):
        for o in outputs:
            ax.plot(time, sim["z"].values[t, :, o], color=colors[o % 10], label=f"z[{o}]")
            if not classes:
                ax.plot(time, sim["targets"].values[t, :, o], color=colors[o % 10], ls="--", lw=1)
        if classes:
            ax2 = ax.twinx()
            ax2.step(time, sim["targets"].values[t], where="mid", color="k", lw=1, ls="--")
            ax2.set_ylabel("target class")
        if "mask" in sim:
            m = sim["mask"].values[t]
            scored = (m.max(axis=-1) if m.ndim == 2 else m) > 0
            for k in np.flatnonzero(~scored):
                ax.axvspan(time[k] - 0.5 * (time[1] - time[0] if len(time) > 1 else 1),
                           time[k] + 0.5 * (time[1] - time[0] if len(time) > 1 else 1), color="0.92", lw=0)
        title = f"trial {t}: loss {float(sim['loss'].values[t]):.3g}"
        if "condition_name" in sim.coords and sim["condition_name"].values[t]:
            title += f"\n{sim['condition_name'].values[t]}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (ms)")
    axes[0].set_ylabel("output (solid) / target (dashed)")
    axes[0].legend(fontsize=7, loc="best")
    return fig


def eigenvalue_plot(fp, max_points=6):
    """Eigenvalues of the Jacobian at each fixed point in the complex plane (1/ms), the stability
    boundary Re = 0 drawn; the legend gives each point's stability and Henrici departure."""
    fp = _fixed_points(fp)
    fig = _figure(5.2, 4.2)
    ax = fig.subplots()
    n = fp.sizes["fixed_point"]
    if n == 0:
        fig.missing = "no fixed point was found below the tolerance"
        ax.text(0.5, 0.5, fig.missing, ha="center", va="center", transform=ax.transAxes)
        return fig
    for k in range(min(n, max_points)):
        lam = fp["eigenvalues"].values[k]
        stable = bool(fp["stable"].values[k])
        ax.scatter(lam.real, lam.imag, s=14, alpha=0.75, marker="o" if stable else "x",
                   label=f"#{k} {'stable' if stable else 'unstable'}, Henrici {float(fp['henrici'].values[k]):.2f}")
    ax.axvline(0, color="k", lw=0.8)
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel("Re λ (1/ms)")
    ax.set_ylabel("Im λ (1/ms)")
    ax.set_title(f"Jacobian eigenvalues, replica {fp.attrs.get('replica', '?')}", fontsize=10)
    ax.legend(fontsize=7)
    if n > max_points:
        fig.notes.append(f"{n - max_points} more fixed points not drawn")
    return fig


def fixed_points_pca(fp, sim=None, n_trials=8):
    """Trajectories (from `sim`, or those stored with the fixed points) projected on their first two
    principal components, with the fixed points on top: filled circles stable, crosses unstable."""
    fp = _fixed_points(fp)
    if sim is not None:
        traj = sim["v"].values
    else:
        traj = fp["trajectories"].values
    traj = traj[:n_trials]
    flat = traj.reshape(-1, traj.shape[-1])
    mean = flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    pcs = vt[:2]
    explained = (s[:2] ** 2) / max((s ** 2).sum(), 1e-300)
    fig = _figure(5.2, 4.2)
    ax = fig.subplots()
    for k in range(traj.shape[0]):
        p = (traj[k] - mean) @ pcs.T
        ax.plot(p[:, 0], p[:, 1], color="0.6", lw=0.8)
        ax.scatter(p[0, 0], p[0, 1], color="0.6", s=8)
    if fp.sizes["fixed_point"]:
        p = (fp["v"].values - mean) @ pcs.T
        stable = fp["stable"].values.astype(bool)
        if stable.any():
            ax.scatter(p[stable, 0], p[stable, 1], s=60, color="C0", label="stable fixed point", zorder=3)
        if (~stable).any():
            ax.scatter(p[~stable, 0], p[~stable, 1], s=60, color="C3", marker="x", label="unstable fixed point",
                       zorder=3)
        ax.legend(fontsize=8)
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}%)" if len(explained) > 1 else "PC 2")
    ax.set_title(f"fixed points over the trajectories, replica {fp.attrs.get('replica', '?')}", fontsize=10)
    return fig
