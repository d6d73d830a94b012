"""Shared machinery of the figures (figures.py, alpha_figures.py): roles of the factors, levels,
colours, legends outside the data, notes, and the per-condition curves with single replicas."""
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .loading import Run, load
from .stats import MIN_N_FOR_INTERVAL, condition_curves

BAND = "thick: mean; thin: one replica; band: range below 5 replicas, else bootstrap 95% CI"
BAND_MEAN = "mean; band: range below 5 replicas, else bootstrap 95% CI"  # figures without single replicas
SHOW_REPLICAS_UP_TO = 10  # conditions with at most this many replicas show each one
REPLICA_LW = 0.9          # line width of one replica (the mean: 2)


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



def _condition_bands(ax, run, metric, hue, levels, colors):
    """One mean curve with its band over seeds per level of `hue`, against the training step."""
    summary = condition_curves(run, metric, by=[hue] if hue else [])
    for k, level in enumerate(levels):
        s = _select(summary, **{hue or "_": level}).sort_values("step")
        ax.plot(s["step"], s["mean"], "o-", ms=3, color=colors[k], label=_label(hue, level))
        ax.fill_between(s["step"], s["lo"].astype(float), s["hi"].astype(float), color=colors[k], alpha=0.15, lw=0)
