"""Figures of a sweep. Each function takes a Run (or a path), returns a matplotlib Figure and never
fails for want of data: a metric that was not recorded (yet) gives a figure that says so, and
`fig.missing` holds that sentence (None when the figure is complete); `fig.notes` lists caveats.

Conditions are the swept axes (Run.axes). `hue`, `col` and `row` pick which axis colours the
curves, splits the panels into columns or rows; unset roles take the remaining swept axes in
declared order, and axes left over are averaged over together with the seeds.
"""
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .loading import Run, load
from .stats import condition_curves, condition_final

BAND = "mean and 95% CI over seeds"


# ---- helpers ------------------------------------------------------------------------------------
def _run(run):
    return run if isinstance(run, Run) else load(run)


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def _label(name, value):
    return f"{name}={_fmt(value)}" if name else "all replicas"


def _figure(width, height):
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.missing = None
    fig.notes = []
    return fig


def missing_figure(title, message):
    """A small figure that states what is missing instead of drawing."""
    fig = _figure(7.5, 1.3)
    fig.text(0.02, 0.68, title, fontsize=11, weight="bold")
    fig.text(0.02, 0.28, message, fontsize=10, color="#9a2b2b", wrap=True)
    fig.missing = message
    fig.notes.append(message)
    return fig


def _varying(run, name):
    return name in run.replicas and run.replicas[name].nunique(dropna=False) > 1


def _roles(run, hue, col, row):
    """Fills the unset roles with the swept axes in declared order; returns (hue, col, row, rest)."""
    for name in (hue, col, row):
        if name is not None and name not in run.replicas:
            raise ValueError(f"{name!r} is not a /replicas column; the swept axes are {run.axes}")
    taken = {hue, col, row}
    free = [a for a in run.axes if a not in taken and _varying(run, a)]
    if hue is None and free:
        hue = free.pop(0)
    if col is None and free:
        col = free.pop(0)
    if row is None and free:
        row = free.pop(0)
    return hue, col, row, free


def _levels(run, name):
    if name is None:
        return [None]
    return sorted(run.replicas[name].dropna().unique().tolist())


def _colors(run, name, n):
    numeric = name is not None and np.issubdtype(run.replicas[name].dtype, np.number)
    if numeric:
        return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.85, max(n, 1))]
    return [colormaps["tab10"](k % 10) for k in range(n)]


def _grid(rows, cols, width=3.6, height=2.7):
    fig = _figure(width * len(cols) + 0.8, height * len(rows) + 0.6)
    axs = fig.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey=True)
    return fig, axs


def _select(df, **where):
    for name, value in where.items():
        if name is not None and name in df:
            df = df[df[name] == value]
    return df


def _progress_note(run, fig):
    if run.status != "complete":
        p = run.progress
        done = f" ({p.steps_done} of {p.n_steps} steps)" if p and p.n_steps else ""
        fig.notes.append(f"run not complete{done}: curves end at the last flushed step")


def _curves(run, metric, hue, col, row, title, ylabel, log=False, reference=None):
    hue, col, row, rest = _roles(run, hue, col, row)
    summary = condition_curves(run, metric, by=[n for n in (row, col, hue) if n], geometric=log)
    rows, cols, hues = _levels(run, row), _levels(run, col), _levels(run, hue)
    colors = _colors(run, hue, len(hues))
    fig, axs = _grid(rows, cols)
    for i, rv in enumerate(rows):
        for j, cv in enumerate(cols):
            ax = axs[i][j]
            panel = _select(summary, **{row or "_": rv, col or "__": cv})
            for k, hv in enumerate(hues):
                s = _select(panel, **{hue or "_": hv}).sort_values("step")
                s = s[np.isfinite(s["mean"])]
                if s.empty:
                    continue
                ax.plot(s["step"], s["mean"], color=colors[k], lw=1.4, label=_label(hue, hv))
                ax.fill_between(s["step"], s["lo"], s["hi"], color=colors[k], alpha=0.2, lw=0)
            if reference:
                reference(ax, _select(run.replicas, **{row or "_": rv, col or "__": cv}))
            names = [_label(row, rv) if row else None, _label(col, cv) if col else None]
            ax.set_title(", ".join(n for n in names if n), fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel("training step")
            if j == 0:
                ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    if log:
        for ax in axs.flat:
            ax.set_yscale("log")
    axs[0][0].legend(fontsize=7, title=hue, title_fontsize=7)
    averaged = f"; averaged over {', '.join(rest)}" if rest else ""
    band = "geometric " + BAND if log else BAND
    fig.suptitle(f"{title} ({band}{averaged})", fontsize=10)
    _progress_note(run, fig)
    return fig


def _hline(column, label, style):
    def draw(ax, replicas):
        if column not in replicas:
            return
        values = sorted(v for v in replicas[column].unique() if np.isfinite(v))
        for n, v in enumerate(values):
            ax.axhline(v, color="black", ls=style, lw=1, label=label if n == 0 else None)
    return draw


# ---- the figures --------------------------------------------------------------------------------
def alpha_trajectories(run, hue=None, col=None, row=None):
    """alpha = sigmoid(a) over training, by condition."""
    run = _run(run)
    missing = run.missing("alpha")
    if missing:
        return missing_figure("alpha trajectories", f"{missing} (alpha exists only for arch = \"mix\")")
    fig = _curves(run, "alpha", hue, col, row, "alpha over training", "alpha")
    for ax in fig.axes:
        ax.set_ylim(-0.02, 1.02)
    return fig


def loss_curves(run, metric="loss", hue=None, col=None, row=None):
    """Training loss (or accuracy) by condition, with the task's baseline (or chance) line."""
    run = _run(run)
    missing = run.missing(metric)
    if missing:
        extra = " (NaN for tasks without an accuracy)" if metric == "accuracy" else ""
        return missing_figure(f"{metric} curves", missing + extra)
    if metric == "accuracy":
        ref = _hline("chance_accuracy", "chance", ":")
    else:
        ref = _hline("baseline_loss", "baseline (trivial predictor)", "--")
    fig = _curves(run, metric, hue, col, row, f"{metric} over training", metric, log=metric == "loss", reference=ref)
    return fig


def accuracy_curves(run, hue=None, col=None, row=None):
    """Accuracy by condition with the chance line."""
    return loss_curves(run, "accuracy", hue, col, row)


def final_alpha_heatmap(run, x=None, y=None, metric="alpha"):
    """Each replica's last alpha, averaged over seeds, as a heat map over two swept axes."""
    run = _run(run)
    missing = run.missing(metric)
    if missing:
        return missing_figure(f"final {metric} heat map", missing)
    varying = [a for a in run.axes if _varying(run, a)]
    x = x or next((a for a in varying if a != y), None)
    y = y or next((a for a in varying if a != x), None)
    if x is None or y is None:
        return missing_figure(f"final {metric} heat map",
                              f"needs two swept axes with more than one value; this sweep varies {varying or 'none'}")
    table = condition_final(run, metric, by=[y, x])
    xs, ys = _levels(run, x), _levels(run, y)
    grid = np.full((len(ys), len(xs)), np.nan)
    counts = np.zeros_like(grid, dtype=int)
    for _, r in table.iterrows():
        grid[ys.index(r[y]), xs.index(r[x])] = r["mean"]
        counts[ys.index(r[y]), xs.index(r[x])] = r["n"]
    fig = _figure(1.1 * len(xs) + 2.6, 0.8 * len(ys) + 1.6)
    ax = fig.subplots()
    vmin, vmax = (0.0, 1.0) if metric == "alpha" else (np.nanmin(grid), np.nanmax(grid))
    image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if np.isfinite(grid[i, j]):
                light = (grid[i, j] - vmin) / ((vmax - vmin) or 1) < 0.6
                ax.text(j, i, f"{grid[i, j]:.2f}\nn={counts[i, j]}", ha="center", va="center", fontsize=8,
                        color="white" if light else "black")
    ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.colorbar(image, ax=ax, label=f"final {metric}")
    rest = [a for a in varying if a not in (x, y)]
    averaged = f", averaged over {', '.join(rest)}" if rest else ""
    fig.suptitle(f"final {metric} (mean over seeds{averaged})", fontsize=10)
    _progress_note(run, fig)
    return fig


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
    hue, _, _, rest = _roles(run, hue, None, None)
    fig = _figure(10, 3.6)
    left, right = fig.subplots(1, 2)
    levels = _levels(run, hue)
    colors = _colors(run, hue, len(levels))
    missing = run.missing("svd_entropy")
    if missing:
        left.text(0.5, 0.5, missing, ha="center", va="center", color="#9a2b2b", wrap=True)
        fig.notes.append(missing)
    else:
        _condition_bands(left, run, "svd_entropy", hue, levels, colors)
        left.legend(fontsize=7)
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
        fig.notes.append(message)
    else:
        for k, level in enumerate(levels):
            if level in first:
                right.plot(grid, first[level], ls="--", color=colors[k], lw=1)
            if level in last and n_ckpt > 1:
                right.plot(grid, last[level], ls="-", color=colors[k], lw=1.4, label=_label(hue, level))
        right.set_yscale("log")
        if n_ckpt == 1:
            fig.notes.append("only the initial checkpoint so far: no end spectrum yet")
        right.plot([], [], "k--", lw=1, label="initial")
        right.plot([], [], "k-", lw=1.4, label=f"step {int(run.checkpoints['step'].values[-1])}")
        right.legend(fontsize=7)
    right.set_xlabel("rank / N")
    right.set_ylabel("singular value (mean over replicas)")
    right.set_title("singular values of W_rec: initial vs last checkpoint", fontsize=9)
    right.grid(alpha=0.3)
    averaged = f"; averaged over {', '.join(rest)}" if rest else ""
    fig.suptitle(f"spectra ({BAND}{averaged})", fontsize=10)
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
    fig = _figure(3.8 * len(levels) + 0.8, 3.4)
    axs = np.atleast_1d(fig.subplots(1, len(levels), sharey=True))
    n_ckpt = run.checkpoints.sizes["step"]
    for ax, level in zip(axs, levels):
        ids = run.replicas.index if by is None else run.replicas.index[run.replicas[by] == level]
        for weights, style, when in ((first, "--", "initial"), (last, "-", "last")):
            if when == "last" and n_ckpt < 2:
                continue
            counts = {"E": np.zeros(bins), "I": np.zeros(bins)}
            for rid in ids:
                w = weights.get(int(rid))
                if w is None:
                    continue
                n_exc = int(run.replicas.loc[rid, "n_exc"]) if "n_exc" in run.replicas else w.shape[1]
                for kind, block in (("E", w[:, :n_exc]), ("I", w[:, n_exc:])):
                    a = np.abs(block[np.isfinite(block)])
                    a = a[a > 0]
                    if a.size:
                        counts[kind] += np.histogram(np.clip(np.log10(a), lo, hi), edges)[0]
            for kind, color in (("E", "#c0392b"), ("I", "#2c5aa0")):
                total = counts[kind].sum()
                if total:
                    ax.plot(centers, counts[kind] / (total * (edges[1] - edges[0])), ls=style, color=color,
                            lw=1.3, label=f"{kind}, {when}")
        ax.set_title(_label(by, level), fontsize=9)
        ax.set_xlabel("log10 |w|")
        ax.grid(alpha=0.3)
    axs[0].set_ylabel("density")
    axs[0].legend(fontsize=7)
    fig.suptitle("W_rec weights by presynaptic type (E: first n_exc columns)", fontsize=10)
    if n_ckpt < 2:
        fig.notes.append("only the initial checkpoint so far: no trained weights yet")
    _progress_note(run, fig)
    return fig


def _condition_bands(ax, run, metric, hue, levels, colors):
    """One mean curve with its band over seeds per level of `hue`, against the training step."""
    summary = condition_curves(run, metric, by=[hue] if hue else [])
    for k, level in enumerate(levels):
        s = _select(summary, **{hue or "_": level}).sort_values("step")
        ax.plot(s["step"], s["mean"], "o-", ms=3, color=colors[k], label=_label(hue, level))
        ax.fill_between(s["step"], s["lo"], s["hi"], color=colors[k], alpha=0.2, lw=0)


def rich_lazy(run, hue=None):
    """Relative weight change ||W_t - W_0|| / ||W_0|| over training, and its final value against the
    initial effective rank (rich learning moves far from a low-rank start, lazy learning stays)."""
    run = _run(run)
    missing = run.missing("rel_weight_change")
    if missing:
        return missing_figure("rich vs lazy", missing)
    hue, _, _, rest = _roles(run, hue, None, None)
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
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    if run.has_metric("effective_rank"):
        initial_rank = run.checkpoints["effective_rank"].isel(step=0).values
        final_change = run.final("rel_weight_change").values
        for k, level in enumerate(levels):
            mask = np.ones(run.n_replicas, bool) if hue is None else (run.replicas[hue] == level).values
            right.scatter(initial_rank[mask], final_change[mask], s=14, color=colors[k], label=_label(hue, level))
        right.set_xlabel("initial effective rank of W_rec")
        right.set_ylabel("final relative weight change")
        right.legend(fontsize=7)
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
    else:
        fig.notes.append("representation alignment is not recorded in this file")
    averaged = f"; averaged over {', '.join(rest)}" if rest else ""
    fig.suptitle(f"rich vs lazy ({BAND}{averaged})", fontsize=10)
    _progress_note(run, fig)
    return fig


# The report's figures, in order: (title, function).
ALL = [
    ("alpha by condition", alpha_trajectories),
    ("loss", loss_curves),
    ("accuracy", accuracy_curves),
    ("final alpha", final_alpha_heatmap),
    ("spectra", spectra),
    ("weight distributions", weight_distributions),
    ("rich vs lazy", rich_lazy),
]
