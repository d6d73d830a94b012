"""Figures of a sweep. Each function takes a Run (or a path), returns a matplotlib Figure and never
fails for want of data: a metric that was not recorded (yet) gives a figure that says so, and
`fig.missing` holds that sentence (None when the figure is complete); `fig.notes` lists caveats.

Conditions are the factors of the sweep (Run.factors: the swept axes, a [[sweep.zip]] group of
axes as one factor). `hue`, `col` and `row` pick which factor colours the curves, splits the
panels into columns or rows; unset roles take the remaining factors in declared order, and factors
left over are pooled together with the seeds (the title says which).

Single replicas come first: where a condition has few replicas (at most SHOW_REPLICAS_UP_TO), and
always for alpha, every replica is a thin line and the mean is drawn on top. Bands are the range of
the replicas below 5 of them and a bootstrap 95% interval of the mean from 5 on (stats.interval),
clipped to the quantity's range; where each replica is drawn and there are fewer than 5, their
lines are the range and no band is drawn.
"""

import numpy as np

from ._plot import (BAND, BAND_MEAN, REPLICA_LW, SHOW_REPLICAS_UP_TO, _colors, _condition_bands, _curves,  # noqa: F401
                    _figure, _hline, _hue_only, _label, _legend, _levels, _note, _pooled, _progress_note, _run,
                    _varying, missing_figure)
from .alpha_figures import alpha_outcomes, alpha_trajectories, final_alpha_heatmap  # noqa: F401


# ---- the figures --------------------------------------------------------------------------------
def loss_curves(run, metric="loss", hue=None, col=None, row=None):
    """Training loss (or accuracy) by condition, with the task's baseline (or chance) line."""
    run = _run(run)
    missing = run.missing(metric)
    if missing:
        extra = " (NaN for tasks without an accuracy)" if metric.endswith("accuracy") else ""
        return missing_figure(f"{metric} curves", missing + extra)
    if metric.endswith("accuracy"):
        ref = _hline("chance_accuracy", "chance", ":")
    else:
        ref = _hline("baseline_loss", "baseline", "--")
    if metric.startswith("eval_"):
        title = (f"{metric[5:]} on the fixed evaluation set (256 trials per replica, seeded apart from training, "
                 "scored at each checkpoint)")
    else:
        title = f"training {metric} (the training batch of each logged step)"
    return _curves(run, metric, hue, col, row, title, metric, log=metric.endswith("loss"), reference=ref)


def accuracy_curves(run, hue=None, col=None, row=None):
    """Accuracy by condition with the chance line."""
    return loss_curves(run, "accuracy", hue, col, row)


def _singular_value_profiles(run, checkpoint, hue, levels, n_points=64):
    """Per hue level: mean over replicas of singular values resampled on a normalised rank grid."""
    sv = run.read_weights("singular_values", checkpoint)
    grid = (np.arange(n_points) + 0.5) / n_points
    out = {}
    for level in levels:
        ids = run.replicas.index if hue is None else run.replicas.index[run.replicas[hue] == level]
        curves = []
        for rid in ids:
            s = sv.get(int(rid))
            if s is None or not np.isfinite(s).all():
                continue
            rank = (np.arange(s.size) + 0.5) / s.size
            curves.append(np.interp(grid, rank, s))
        if curves:
            out[level] = np.mean(curves, axis=0)
    return grid, out


def spectra(run, hue=None):
    """Normalised SVD entropy over training, and singular values at the first vs last checkpoint."""
    run = _run(run)
    hue, rest = _hue_only(run, hue)
    fig = _figure(10, 3.6)
    left, right = fig.subplots(1, 2)
    levels = _levels(run, hue)
    colors = _colors(run, hue, len(levels))
    missing = run.missing("svd_entropy")
    if missing:
        left.text(0.5, 0.5, missing, ha="center", va="center", color="#9a2b2b", wrap=True)
        _note(fig, missing)
    else:
        _condition_bands(left, run, "svd_entropy", hue, levels, colors)
        _legend(left)
    left.set_xlabel("training step")
    left.set_ylabel("normalised SVD entropy")
    left.set_title("SVD entropy of W_rec", fontsize=9)
    left.grid(alpha=0.3)

    n_ckpt = run.checkpoints.sizes.get("step", 0)
    _, first = _singular_value_profiles(run, 0, hue, levels) if n_ckpt else (None, {})
    grid, last = _singular_value_profiles(run, -1, hue, levels) if n_ckpt else (None, {})
    if not first:
        message = "singular values not recorded (yet)"
        right.text(0.5, 0.5, message, ha="center", va="center", color="#9a2b2b")
        _note(fig, message)
    else:
        for k, level in enumerate(levels):
            if level in first:
                right.plot(grid, first[level], ls="--", color=colors[k], lw=1)
            if level in last and n_ckpt > 1:
                right.plot(grid, last[level], ls="-", color=colors[k], lw=1.4, label=_label(hue, level))
        right.set_yscale("log")
        if n_ckpt == 1:
            _note(fig, "only the initial checkpoint so far: no end spectrum yet")
        right.plot([], [], "k--", lw=1, label="initial")
        right.plot([], [], "k-", lw=1.4, label=f"step {int(run.checkpoints['step'].values[-1])}")
        _legend(right)
    right.set_xlabel("rank / N")
    right.set_ylabel("singular value (mean over replicas)")
    right.set_title("singular values of W_rec: initial vs last checkpoint", fontsize=9)
    right.grid(alpha=0.3)
    fig.suptitle(f"spectra ({BAND_MEAN}; {_pooled(run, rest)})", fontsize=10)
    _progress_note(run, fig)
    return fig


def weight_distributions(run, by=None, bins=60, lo=-5.0, hi=1.0):
    """Histograms of log10|w| of W_rec for excitatory and inhibitory columns (presynaptic type),
    initial vs last checkpoint; one panel per value of `by` (default: the learning rule or optimiser
    when it varies)."""
    run = _run(run)
    if not run.weight_groups or run.checkpoints.sizes.get("step", 0) == 0:
        return missing_figure("weight distributions", "no weights recorded (yet): no checkpoint in the file")
    if by is None:
        by = next((c for c in ("rule", "optimizer", "arch") if _varying(run, c)), None)
    levels = _levels(run, by)
    edges = np.linspace(lo, hi, bins + 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    first, last = run.read_weights("W_rec", 0), run.read_weights("W_rec", -1)
    fig = _figure(4.8 * len(levels) + 0.8, 3.4)
    axs = np.atleast_1d(fig.subplots(1, len(levels), sharey=True))
    archs = run.replicas["arch"] if "arch" in run.replicas else None
    n_ckpt = run.checkpoints.sizes["step"]
    for ax, level in zip(axs, levels):
        ids = run.replicas.index if by is None else run.replicas.index[run.replicas[by] == level]
        for weights, style, when in ((first, "--", "initial"), (last, "-", "last")):
            if when == "last" and n_ckpt < 2:
                continue
            counts = {"E": np.zeros(bins), "I": np.zeros(bins), "all": np.zeros(bins)}
            for rid in ids:
                w = weights.get(int(rid))
                if w is None:
                    continue
                n_exc = int(run.replicas.loc[rid, "n_exc"]) if "n_exc" in run.replicas else w.shape[1]
                # `free` networks have no E/I types: all of their weights are one population.
                split = archs is None or archs.loc[rid] != "free"
                for kind, block in ((("E", w[:, :n_exc]), ("I", w[:, n_exc:])) if split else (("all", w),)):
                    a = np.abs(block[np.isfinite(block)])
                    a = a[a > 0]
                    if a.size:
                        counts[kind] += np.histogram(np.clip(np.log10(a), lo, hi), edges)[0]
            for kind, color in (("E", "#c0392b"), ("I", "#2c5aa0"), ("all", "#444444")):
                total = counts[kind].sum()
                if total:
                    name = "all weights (free: no E/I)" if kind == "all" else kind
                    ax.plot(centers, counts[kind] / (total * (edges[1] - edges[0])), ls=style, color=color,
                            lw=1.3, label=f"{name}, {when}")
        ax.set_title(_label(by, level), fontsize=9)
        ax.set_xlabel("log10 |w|")
        ax.grid(alpha=0.3)
        _legend(ax)
    axs[0].set_ylabel("density")
    pooled = f"; pooled over every replica of a panel{'; ' + run.selection if run.selection else ''}"
    fig.suptitle("W_rec weights by presynaptic type (E: first n_exc columns; arch free: no types)" + pooled,
                 fontsize=10)
    if n_ckpt < 2:
        _note(fig, "only the initial checkpoint so far: no trained weights yet")
    _progress_note(run, fig)
    return fig


def rich_lazy(run, hue=None):
    """Relative weight change ||W_t - W_0|| / ||W_0|| over training, and its final value against the
    initial effective rank (rich learning moves far from a low-rank start, lazy learning stays)."""
    run = _run(run)
    missing = run.missing("rel_weight_change")
    if missing:
        return missing_figure("rich vs lazy", missing)
    hue, rest = _hue_only(run, hue)
    levels = _levels(run, hue)
    colors = _colors(run, hue, len(levels))
    has_alignment = run.has_metric("rep_alignment")
    fig = _figure(15 if has_alignment else 10, 3.6)
    axes = fig.subplots(1, 3 if has_alignment else 2)
    left, right = axes[0], axes[1]
    _condition_bands(left, run, "rel_weight_change", hue, levels, colors)
    left.set_xlabel("training step")
    left.set_ylabel("||W_t - W_0||_F / ||W_0||_F")
    left.set_title("relative weight change", fontsize=9)
    _legend(left)
    left.grid(alpha=0.3)
    if run.has_metric("effective_rank"):
        initial_rank = run.checkpoints["effective_rank"].isel(step=0).values
        final_change = run.final("rel_weight_change").values
        for k, level in enumerate(levels):
            mask = np.ones(run.n_replicas, bool) if hue is None else (run.replicas[hue] == level).values
            right.scatter(initial_rank[mask], final_change[mask], s=14, color=colors[k], label=_label(hue, level))
        right.set_xlabel("initial effective rank of W_rec")
        right.set_ylabel("final relative weight change")
        _legend(right)
    else:
        right.text(0.5, 0.5, run.missing("effective_rank"), ha="center", va="center", color="#9a2b2b")
    right.set_title("weight change vs initial rank", fontsize=9)
    right.grid(alpha=0.3)
    if has_alignment:
        ax = axes[2]
        _condition_bands(ax, run, "rep_alignment", hue, levels, colors)
        ax.set_xlabel("training step")
        ax.set_ylabel("cos(H H^T now, H H^T at step 0)")
        ax.set_title("representation alignment (probe batch)", fontsize=9)
        ax.grid(alpha=0.3)
        _legend(ax)
    else:
        _note(fig, "representation alignment is not recorded in this file")
    fig.suptitle(f"rich vs lazy ({BAND_MEAN}; {_pooled(run, rest)})", fontsize=10)
    _progress_note(run, fig)
    return fig


# The report's figures, in order: (title, function).


ALL = [
    ("alpha by condition", alpha_trajectories),
    ("alpha outcomes", alpha_outcomes),
    ("evaluation loss", lambda run: loss_curves(run, "eval_loss")),
    ("evaluation accuracy", lambda run: loss_curves(run, "eval_accuracy")),
    ("training loss", loss_curves),
    ("training accuracy", accuracy_curves),
    ("final alpha", final_alpha_heatmap),
    ("spectra", spectra),
    ("weight distributions", weight_distributions),
    ("rich vs lazy", rich_lazy),
]
