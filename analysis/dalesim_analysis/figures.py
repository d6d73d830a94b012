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
from matplotlib import colormaps
from matplotlib.figure import Figure

from .loading import Run, load
from .stats import (HIGH_ALPHA, INTERVAL_TEXT, LOW_ALPHA, MIN_N_FOR_INTERVAL, alpha_change, alpha_moves,
                    bounds_of, condition_curves, condition_final)

BAND = "thick: mean; thin: one replica; band: range below 5 replicas, else bootstrap 95% CI"
BAND_MEAN = "mean; band: range below 5 replicas, else bootstrap 95% CI"  # figures without single replicas
SHOW_REPLICAS_UP_TO = 10  # conditions with at most this many replicas show each one
REPLICA_LW = 0.9          # line width of one replica (the mean: 2)


# ---- helpers ------------------------------------------------------------------------------------
def _run(run):
    return run if isinstance(run, Run) else load(run)


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def _label(name, value):
    if not name:
        return "all replicas"
    if " & " in name:  # a zip factor: its values already read "a=..., b=..."
        return str(value)
    return f"{name}={_fmt(value)}"


def _figure(width, height):
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.missing = None
    fig.notes = []
    return fig


def _note(fig, text):
    if text not in fig.notes:
        fig.notes.append(text)


def _legend(ax, **kw):
    """A legend outside the data, to the right of the panel (nothing when there is nothing to name)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def _plain_ticks(fig):
    """No offset or scientific tick labels (\"1e-5+1\") on linear axes."""
    for ax in fig.axes:
        for axis in ("x", "y"):
            try:
                ax.ticklabel_format(axis=axis, useOffset=False, style="plain")
            except (AttributeError, ValueError):  # log or categorical axis
                pass


def _pooled(run, rest):
    pooled = ["seeds", *rest] if "seed" not in rest else list(rest)
    if run.selection:
        return f"pooled over {', '.join(pooled)}; {run.selection}"
    return f"pooled over {', '.join(pooled)}"


def missing_figure(title, message):
    """A small figure that states what is missing instead of drawing."""
    fig = _figure(7.5, 1.3)
    fig.text(0.02, 0.68, title, fontsize=11, weight="bold")
    fig.text(0.02, 0.28, message, fontsize=10, color="#9a2b2b", wrap=True)
    fig.missing = message
    _note(fig, message)
    return fig


def _varying(run, name):
    return name in run.replicas and run.replicas[name].nunique(dropna=False) > 1


def _roles(run, hue, col, row):
    """Fills the unset roles with the swept axes in declared order; returns (hue, col, row, rest)."""
    for name in (hue, col, row):
        if name is not None and name not in run.replicas:
            raise ValueError(f"{name!r} is not a /replicas column; the swept axes are {run.axes} "
                             f"(factors {run.factors})")
    taken = {hue, col, row}
    for name in list(taken):  # an axis of a zip group stands for its group
        for factor, cols in run.zip_groups.items():
            if name in cols:
                taken.add(factor)
                taken.update(cols)
    free = [a for a in run.factors if a not in taken and _varying(run, a)]
    if hue is None and free:
        hue = free.pop(0)
    if col is None and free:
        col = free.pop(0)
    if row is None and free:
        row = free.pop(0)
    return hue, col, row, free


def _hue_only(run, hue):
    """For figures with one panel per role: the hue (default: the first varying factor) and the
    varying factors it leaves pooled."""
    hue, _, _, _ = _roles(run, hue, None, None)
    used = {hue, *run.zip_groups.get(hue, [])}
    for factor, cols in run.zip_groups.items():
        if hue in cols:
            used.update([factor, *cols])
    return hue, [f for f in run.factors if f not in used and _varying(run, f)]


def _levels(run, name):
    if name is None:
        return [None]
    present = set(run.replicas[name].dropna().unique().tolist())
    if name in run.factor_levels:  # a zip factor: in sweep order
        return [v for v in run.factor_levels[name] if v in present]
    return sorted(present)


def _colors(run, name, n):
    """Distinct colours, none near white: viridis (dark blue to green, short of its pale yellow end)
    for numbers, tab10 without its grey for the rest."""
    numeric = name is not None and np.issubdtype(run.replicas[name].dtype, np.number)
    if numeric:
        return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.75, max(n, 1))]
    tab = [colormaps["tab10"](k) for k in (0, 1, 2, 3, 4, 5, 6, 8, 9)]
    return [tab[k % len(tab)] for k in range(n)]


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
        done = f" ({p.steps_done} of {p.n_steps} steps done)" if p and p.n_steps else ""
        _note(fig, f"run not complete{done}: curves end at the last flushed step")
    _plain_ticks(fig)


def _curves(run, metric, hue, col, row, title, ylabel, log=False, reference=None, replicas=None):
    """Curves of `metric` per condition: each replica thin (when `replicas`, default: conditions of
    at most SHOW_REPLICAS_UP_TO replicas), the mean thick, the band of stats.interval."""
    hue, col, row, rest = _roles(run, hue, col, row)
    summary = condition_curves(run, metric, by=[n for n in (row, col, hue) if n], geometric=log)
    table = (run.checkpoint_table([metric]) if metric in run.checkpoints.data_vars
             else run.history_table([metric]))
    rows, cols, hues = _levels(run, row), _levels(run, col), _levels(run, hue)
    colors = _colors(run, hue, len(hues))
    fig, axs = _grid(rows, cols, width=4.6)
    shown = False
    for i, rv in enumerate(rows):
        for j, cv in enumerate(cols):
            ax = axs[i][j]
            where = {row or "_": rv, col or "__": cv}
            panel = _select(summary, **where)
            panel_table = _select(table, **where)
            for k, hv in enumerate(hues):
                s = _select(panel, **{hue or "_": hv}).sort_values("step")
                s = s[np.isfinite(s["mean"].astype(float))]
                if s.empty:
                    continue
                lines = _select(panel_table, **{hue or "_": hv})
                n = int(lines["replica"].nunique())
                drawn = bool(replicas or (replicas is None and n <= SHOW_REPLICAS_UP_TO))
                if drawn:
                    shown = True
                    for _, one in lines.groupby("replica"):
                        one = one.sort_values("step")
                        ax.plot(one["step"], one[metric], color=colors[k], lw=REPLICA_LW, alpha=0.7)
                # Below 5 replicas the band would be their range: the replicas' own lines show it.
                if not (drawn and n < MIN_N_FOR_INTERVAL):
                    ax.fill_between(s["step"], s["lo"].astype(float), s["hi"].astype(float), color=colors[k],
                                    alpha=0.15, lw=0)
                ax.plot(s["step"], s["mean"], color=colors[k], lw=2.0, label=f"{_label(hue, hv)} (n={n})")
            if reference:
                reference(ax, _select(run.replicas, **where))
            names = [_label(row, rv) if row else None, _label(col, cv) if col else None]
            ax.set_title(", ".join(n for n in names if n), fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel("training step")
            if j == 0:
                ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if shown:
                ax.plot([], [], color="black", lw=REPLICA_LW, alpha=0.7, label="one replica")
            _legend(ax, title=hue, title_fontsize=7)
    if log:
        for ax in axs.flat:
            ax.set_yscale("log")
    band = ("thick: geometric mean; thin: one replica; band: range below 5 replicas, else bootstrap 95% CI"
            if log else BAND)
    fig.suptitle(f"{title}\n({band}; {_pooled(run, rest)})", fontsize=10)
    _progress_note(run, fig)
    return fig


def _hline(column, label, style):
    """Draws each distinct value of `column` among the panel's replicas, labelled with its task."""
    def draw(ax, replicas):
        if column not in replicas:
            return
        pairs = replicas[[c for c in ("task", column) if c in replicas]].drop_duplicates()
        pairs = pairs[np.isfinite(pairs[column].astype(float))].sort_values(column)
        for _, r in pairs.iterrows():
            task = f" ({r['task']})" if "task" in r else ""
            ax.axhline(r[column], color="black", ls=style, lw=1, label=f"{label}{task}: {r[column]:.3g}")
    return draw


# ---- the figures --------------------------------------------------------------------------------
def alpha_trajectories(run, hue=None, col=None, row=None):
    """alpha = sigmoid(a) over training, by condition."""
    run = _run(run)
    missing = run.missing("alpha")
    if missing:
        return missing_figure("alpha trajectories", f"{missing} (alpha exists only for arch = \"mix\")")
    fig = _curves(run, "alpha", hue, col, row, "alpha over training, every replica", "alpha", replicas=True)
    for ax in fig.axes:
        ax.set_ylim(-0.02, 1.02)
    return fig


def _condition_label(run, by, key):
    key = key if isinstance(key, tuple) else (key,)
    return "\n".join(_label(b, v) for b, v in zip(by, key)) if by else "all replicas"


def alpha_outcomes(run, by=None):
    """Where alpha went, per replica: final alpha (left) and its change final - initial (right), one
    point per replica per condition, with the counts that moved up / down, the sign test and a
    'bimodal' flag where final alphas lie both in [0, 0.1] and in [0.9, 1]."""
    run = _run(run)
    missing = run.missing("alpha")
    if missing:
        return missing_figure("alpha outcomes", f"{missing} (alpha exists only for arch = \"mix\")")
    by = [f for f in (run.factors if by is None else by) if _varying(run, f)]
    moves = alpha_moves(run, by=by)
    change = alpha_change(run).join(run.replicas[by]) if by else alpha_change(run)
    change = change[np.isfinite(change["change"])]
    n_cond = max(len(moves), 1)
    fig = _figure(max(8.0, 2.0 * n_cond + 3.0), 4.6)
    left, right = fig.subplots(1, 2, sharex=True)
    rng = np.random.default_rng(0)
    labels = []
    for k, (_, m) in enumerate(moves.iterrows()):
        key = tuple(m[b] for b in by)
        g = change
        for b, v in zip(by, key):
            g = g[g[b] == v]
        labels.append(_condition_label(run, by, key))
        x = k + rng.uniform(-0.12, 0.12, len(g))
        color = "#b03a2e" if m["bimodal"] else "#1f4e79"
        left.scatter(x, g["final"], s=18, color=color, zorder=3)
        right.scatter(x, g["change"], s=18, color=color, zorder=3)
        if m["bimodal"]:
            left.text(k, 1.04, "bimodal", ha="center", va="bottom", fontsize=8, color="#b03a2e", weight="bold")
        right.text(k, 1.06, f"up {m['n_up']}, down {m['n_down']}\np={m['sign_test_p']:.2g}", ha="center",
                   va="bottom", fontsize=7)
    left.axhspan(0, LOW_ALPHA, color="#d0d0d0", alpha=0.5, lw=0, label=f"alpha <= {LOW_ALPHA}")
    left.axhspan(HIGH_ALPHA, 1, color="#9fc5e8", alpha=0.5, lw=0, label=f"alpha >= {HIGH_ALPHA}")
    left.set_ylim(-0.02, 1.15)
    left.set_ylabel("final alpha (one point per replica)")
    left.set_title("final alpha", fontsize=9)
    right.axhline(0, color="black", lw=0.8)
    right.set_ylabel("final - initial alpha")
    right.set_title("change of alpha (sign test per condition)", fontsize=9)
    right.set_ylim(-1.04, 1.35)
    right.set_yticks([-1, -0.5, 0, 0.5, 1])
    for ax in (left, right):
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlim(-0.6, max(len(labels), 1) - 0.4)
        ax.grid(alpha=0.3, axis="y")
    right.scatter([], [], s=18, color="#b03a2e", label="bimodal condition")
    right.scatter([], [], s=18, color="#1f4e79", label="other condition")
    (h_left, l_left), (h_right, l_right) = left.get_legend_handles_labels(), right.get_legend_handles_labels()
    right.legend(handles=[*h_left, *h_right], labels=[*l_left, *l_right], fontsize=7, loc="upper left",
                 bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    n_bimodal = int(moves["bimodal"].sum()) if len(moves) else 0
    if n_bimodal:
        _note(fig, f"bimodal outcome in {n_bimodal} of {len(moves)} conditions: final alpha in both "
                   f"[0, {LOW_ALPHA}] and [{HIGH_ALPHA}, 1]; the mean hides it")
    fig.suptitle(f"alpha per replica ({_pooled(run, [])})", fontsize=10)
    fig.moves = moves
    _progress_note(run, fig)
    return fig


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


def final_alpha_heatmap(run, x=None, y=None, metric="alpha"):
    """Each replica's last alpha, averaged over seeds, as a heat map over two factors; each cell
    gives the mean, n and the replicas' range, says "n/a" where no replica ran, and "bimodal" where
    final alphas lie both in [0, 0.1] and [0.9, 1]."""
    run = _run(run)
    missing = run.missing(metric)
    if missing:
        return missing_figure(f"final {metric} heat map", missing)
    varying = [a for a in run.factors if _varying(run, a)]
    x = x or next((a for a in varying if a != y), None)
    y = y or next((a for a in varying if a != x), None)
    if x is None or y is None:
        return missing_figure(f"final {metric} heat map",
                              f"needs two swept factors with more than one value; this sweep varies {varying or 'none'}")
    table = condition_final(run, metric, by=[y, x])
    bimodal = {}
    if metric == "alpha":
        for _, m in alpha_moves(run, by=[y, x]).iterrows():
            bimodal[(m[y], m[x])] = bool(m["bimodal"])
    xs, ys = _levels(run, x), _levels(run, y)
    grid = np.full((len(ys), len(xs)), np.nan)
    text = [["n/a" for _ in xs] for _ in ys]
    for _, r in table.iterrows():
        i, j = ys.index(r[y]), xs.index(r[x])
        if not np.isfinite(r["mean"]):
            continue
        grid[i, j] = r["mean"]
        cell = f"{r['mean']:.2f}\nn={r['n']}"
        if r["n"] > 1:
            cell += f"\n[{r['min']:.2f}, {r['max']:.2f}]"
        if bimodal.get((r[y], r[x])):
            cell += "\nbimodal"
        text[i][j] = cell
    fig = _figure(1.5 * len(xs) + 3.0, 1.0 * len(ys) + 1.8)
    ax = fig.subplots()
    lo, hi = bounds_of(metric)
    finite = grid[np.isfinite(grid)]
    vmin = lo if np.isfinite(lo) else (finite.min() if finite.size else 0)
    vmax = hi if np.isfinite(hi) else (finite.max() if finite.size else 1)
    if metric not in ("alpha",) and finite.size:
        vmin, vmax = finite.min(), finite.max()
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="viridis", vmin=vmin, vmax=vmax,
                      aspect="auto")
    ax.set_facecolor("#e6e6e6")  # cells without replicas
    for i in range(len(ys)):
        for j in range(len(xs)):
            dark = np.isfinite(grid[i, j]) and (grid[i, j] - vmin) / ((vmax - vmin) or 1) < 0.6
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=8, color="white" if dark else "black",
                    weight="bold" if "bimodal" in text[i][j] else "normal")
    ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs], fontsize=8)
    ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys], fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.colorbar(image, ax=ax, label=f"final {metric} (mean)")
    rest = [a for a in varying if a not in (x, y)]
    fig.suptitle(f"final {metric}: mean, n, [min, max] of the replicas ({_pooled(run, rest)})", fontsize=10)
    if any("bimodal" in t for row_ in text for t in row_):
        _note(fig, "some conditions are bimodal: their mean is between two groups of replicas (see alpha outcomes)")
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


def _condition_bands(ax, run, metric, hue, levels, colors):
    """One mean curve with its band over seeds per level of `hue`, against the training step."""
    summary = condition_curves(run, metric, by=[hue] if hue else [])
    for k, level in enumerate(levels):
        s = _select(summary, **{hue or "_": level}).sort_values("step")
        ax.plot(s["step"], s["mean"], "o-", ms=3, color=colors[k], label=_label(hue, level))
        ax.fill_between(s["step"], s["lo"].astype(float), s["hi"].astype(float), color=colors[k], alpha=0.15, lw=0)


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
