"""The alpha study's analysis (data/sweeps/study/): where trained alpha ends, counted per replica
and condition, with Wilson intervals for the fractions; the fixed-alpha scan's held-out loss as a
function of alpha; and whether the first steps' gradient of alpha predicts where it goes.

    python3 -m dalesim_analysis study OUT.h5 [OUT2.h5 ...] -o DIR

writes DIR/study.md (the tables) and one PNG per figure, each named after its file.
"""
import math
import os

import numpy as np
import pandas as pd

from . import stats
from ._plot import _label

# The two-sided 95% normal quantile of the Wilson interval.
Z95 = 1.959963984540054


def wilson(k, n, z=Z95):
    """Wilson score interval (lo, hi) of a fraction k / n; inside [0, 1] by construction, and
    (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exactly 0 (1) when k = 0 (k = n), where rounding would leave a hair above (below).
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def outcome_fractions(run, by=None):
    """Per condition: n replicas with alpha; how many ended in [0, 0.1] (low), in [0.9, 1] (high)
    and between; the fractions low and high with their Wilson 95% intervals; the median final
    alpha; and the bimodal flag (both low and high present)."""
    moves = stats.alpha_moves(run, by)
    if moves.empty:
        return moves
    final = stats.alpha_change(run)["final"]
    by = list(run.factors if by is None else by)
    frame = run.replicas[[c for c in by if c in run.replicas]].join(final)
    medians = frame.groupby(by, sort=True)["final"].median().reset_index() if by else None
    out = moves[[*by, "n", "n_low", "n_high", "bimodal"]].copy()
    out["n_middle"] = out["n"] - out["n_low"] - out["n_high"]
    for side in ("low", "high"):
        k = out[f"n_{side}"].astype(int)
        n = out["n"].astype(int)
        out[f"frac_{side}"] = k / n.where(n > 0, np.nan)
        bounds = [wilson(int(a), int(b)) for a, b in zip(k, n)]
        out[f"frac_{side}_lo"] = [b[0] for b in bounds]
        out[f"frac_{side}_hi"] = [b[1] for b in bounds]
    if medians is not None:
        out = out.merge(medians.rename(columns={"final": "median_final_alpha"}), on=by, how="left")
    else:
        out["median_final_alpha"] = float(final.median())
    return out


def _final_metric(run, metric):
    if not run.has_metric(metric):
        raise KeyError(f"{run.path}: no finite {metric}")
    return run.final(metric)


def fixed_alpha_replicas(run, by=None, metric="eval_loss"):
    """One row per replica: its condition (the factors in `by` other than alpha_init), alpha_init
    and its final held-out `metric`."""
    if "alpha_init" not in run.replicas:
        raise KeyError(f"{run.path}: no alpha_init column")
    by = [f for f in (run.factors if by is None else by) if f != "alpha_init"]
    frame = run.replicas[[*[c for c in by if c in run.replicas], "alpha_init"]].copy()
    frame[metric] = _final_metric(run, metric).reindex(frame.index).values
    return frame


def fixed_alpha_scan(run, by=None, metric="eval_loss"):
    """Per condition (the factors in `by` other than alpha_init) and alpha: the final held-out
    `metric` over the replicas (mean, honest interval, n, min, max), and per condition the alpha
    with the lowest mean (`best`; the highest for an accuracy). For sweeps that train with
    lr_alpha = 0 on a grid of model.alpha_init (data/sweeps/study/fixed_alpha.toml)."""
    by = [f for f in (run.factors if by is None else by) if f != "alpha_init"]
    frame = fixed_alpha_replicas(run, by, metric)
    table = stats.summarize(frame, [*by, "alpha_init"], metric)
    table["best"] = False
    groups = table.groupby(by, sort=False).groups.values() if by else [table.index]
    higher_is_better = "accuracy" in metric
    for idx in groups:
        means = table.loc[idx, "mean"].astype(float)
        if means.notna().any():
            table.loc[means.idxmax() if higher_is_better else means.idxmin(), "best"] = True
    return table


def early_signal(run, by=None, first_rows=5, tolerance=1e-3):
    """Does the gradient of alpha in the first logged steps say where alpha goes? Per replica, the
    sign of the mean of /history/alpha_grad over its first `first_rows` rows (negative: gradient
    descent raises alpha) against the sign of its final - initial alpha (changes within
    `tolerance` left out); per condition, n compared and the fraction that agree, with its Wilson
    interval."""
    grad = run.metric("alpha_grad").values[:first_rows]
    early = np.nanmean(np.where(np.isfinite(grad), grad, np.nan), axis=0) if grad.size else np.array([])
    change = stats.alpha_change(run)["change"]
    by = list(run.factors if by is None else by)
    frame = run.replicas[[c for c in by if c in run.replicas]].copy()
    frame["early"] = pd.Series(early, index=run.metric("alpha_grad")["replica"].values).reindex(frame.index)
    frame["change"] = change.reindex(frame.index)
    frame = frame[np.isfinite(frame["early"]) & np.isfinite(frame["change"]) & (frame["change"].abs() > tolerance)]
    frame["agree"] = (frame["early"] < 0) == (frame["change"] > 0)
    rows = []
    for key, g in stats.grouped(frame, by):
        k, n = int(g["agree"].sum()), len(g)
        lo, hi = wilson(k, n)
        rows.append([*key, n, k, k / n if n else np.nan, lo, hi])
    return pd.DataFrame(rows, columns=[*by, "n", "n_agree", "frac_agree", "frac_agree_lo", "frac_agree_hi"])


ACTIVITY_METRICS = ("act_corr_e", "act_corr_i", "act_sparseness", "act_ei_balance")


def outcome_of(final):
    """"low" (final alpha <= 0.1), "high" (>= 0.9) or "middle"; NaN stays NaN."""
    final = pd.Series(final)
    out = pd.Series(np.where(final <= stats.LOW_ALPHA, "low", np.where(final >= stats.HIGH_ALPHA, "high", "middle")),
                    index=final.index, dtype=object)
    out[~np.isfinite(final.astype(float))] = np.nan
    return out


def final_frame(run, by=None, metrics=()):
    """One row per replica: the factors in `by`, seed, the final value of each metric present (last
    finite row), and, where alpha was recorded, initial / final alpha and the outcome."""
    by = [c for c in (run.factors if by is None else by) if c in run.replicas]
    cols = [*by, *[c for c in ("seed", "baseline_loss") if c in run.replicas and c not in by]]
    frame = run.replicas[cols].copy()
    for m in metrics:
        if run.has_metric(m):
            frame[m] = run.final(m).reindex(frame.index).values
    if run.has_metric("alpha"):
        change = stats.alpha_change(run).reindex(frame.index)
        frame["alpha_initial"] = change["initial"].values
        frame["alpha_final"] = change["final"].values
        frame["outcome"] = outcome_of(frame["alpha_final"]).values
    return frame


def learned(frame, metric="eval_loss", margin=0.1):
    """Per row: True where the final `metric` is at least `margin` below the task's baseline loss
    (the loss of the best constant output)."""
    return frame[metric] <= (1 - margin) * frame["baseline_loss"]


def compact_outcomes(run, by=None, metric="eval_loss"):
    """Per condition one row: n; the counts of replicas ending low / middle / high; the fraction
    high with its Wilson 95% interval; the median final alpha; the median final `metric` and how
    many replicas learned the task (final `metric` at least 10% below the baseline loss)."""
    by = [c for c in (run.factors if by is None else by) if c in run.replicas]
    frame = final_frame(run, by, [metric])
    frame = frame[frame["outcome"].notna()]
    rows = []
    for key, g in stats.grouped(frame, by):
        n = len(g)
        k = {side: int((g["outcome"] == side).sum()) for side in ("low", "middle", "high")}
        lo, hi = wilson(k["high"], n)
        n_learned = int(learned(g, metric).sum()) if metric in g else 0
        rows.append([*key, n, k["low"], k["middle"], k["high"], k["high"] / n if n else np.nan, lo, hi,
                     float(g["alpha_final"].median()), float(g[metric].median()) if metric in g else np.nan,
                     n_learned])
    return pd.DataFrame(rows, columns=[*by, "n", "n_low", "n_middle", "n_high", "frac_high", "frac_high_lo",
                                       "frac_high_hi", "median_final_alpha", f"median_{metric}", "n_learned"])


def paired_fixed_alpha(run, by=None, metric="eval_loss", low=0.0, high=1.0):
    """The fixed-alpha scan's paired test: replicas of one seed share their initial weights, so per
    condition (the factors other than alpha_init) each seed gives a pair (alpha = `low`, alpha =
    `high`). Per condition: n pairs, in how many the Dale end (`high`) reached the lower final
    `metric`, the sign test p-value and the median difference high - low."""
    by = [c for c in (run.factors if by is None else by) if c != "alpha_init" and c in run.replicas]
    frame = final_frame(run, [*by, "alpha_init"], [metric])
    rows = []
    for key, g in stats.grouped(frame, by):
        a = g[np.isclose(g["alpha_init"].astype(float), low)].set_index("seed")[metric]
        b = g[np.isclose(g["alpha_init"].astype(float), high)].set_index("seed")[metric]
        both = a.index.intersection(b.index)
        d = (b.loc[both] - a.loc[both]).astype(float)
        d = d[np.isfinite(d)]
        better, worse = int((d < 0).sum()), int((d > 0).sum())
        rows.append([*key, len(d), better, worse, stats.sign_test(better, worse),
                     float(d.median()) if len(d) else np.nan])
    return pd.DataFrame(rows, columns=[*by, "n_pairs", "n_dale_better", "n_dale_worse", "sign_test_p",
                                       f"median_{metric}_dale_minus_free"])


def decided_by(run, by=None, steps=(20, 40, 100, 250, 500, 1000)):
    """How early is trained alpha decided? Among the replicas that ended low or high: per condition
    and step s, the fraction whose alpha at the last logged step <= s had already moved from its
    initial value in the direction of its end (Wilson 95% interval)."""
    by = [c for c in (run.factors if by is None else by) if c in run.replicas]
    frame = final_frame(run, by)
    frame = frame[frame["outcome"].isin(["low", "high"])]
    da = run.metric("alpha")
    logged = da["step"].values
    values = pd.DataFrame(da.values, index=logged, columns=da["replica"].values)
    rows = []
    for key, g in stats.grouped(frame, by):
        for s in steps:
            at = logged[logged <= s]
            if not at.size:
                continue
            now = values.loc[at[-1], g.index.values].values.astype(float)
            toward = np.sign(now - g["alpha_initial"].values) == np.sign(g["alpha_final"].values - g["alpha_initial"].values)
            k, n = int(toward.sum()), len(g)
            lo, hi = wilson(k, n)
            rows.append([*key, int(s), n, k, k / n if n else np.nan, lo, hi])
    return pd.DataFrame(rows, columns=[*by, "step", "n", "n_toward_end", "frac", "frac_lo", "frac_hi"])


def early_norm_ratio(run, by=None, first_rows=5):
    """The relative size of the two parts' gradients at the start: per replica the mean over its
    first `first_rows` logged rows of grad_norm_dale / grad_norm_free; per condition and outcome
    (where alpha ended), n and the median of that ratio."""
    by = [c for c in (run.factors if by is None else by) if c in run.replicas]
    dale = run.metric("grad_norm_dale")
    free = run.metric("grad_norm_free").values[:first_rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nanmean(np.where(free > 0, dale.values[:first_rows] / free, np.nan), axis=0)
    frame = final_frame(run, by)
    frame["early_norm_ratio"] = pd.Series(ratio, index=dale["replica"].values).reindex(frame.index).values
    frame = frame[frame["outcome"].notna()]
    return medians_by(frame, [*by, "outcome"], ["early_norm_ratio"])


def medians_by(frame, by, metrics):
    """Per group of `by`: n and the median of each metric (the rows with a finite value)."""
    rows = []
    for key, g in stats.grouped(frame, by):
        rows.append([*key, len(g), *[float(np.nanmedian(g[m])) if m in g and np.isfinite(g[m]).any() else np.nan
                                     for m in metrics]])
    return pd.DataFrame(rows, columns=[*by, "n", *[f"median_{m}" for m in metrics]])


def winners_activity(run, by=None, metrics=("eval_loss", *ACTIVITY_METRICS)):
    """Per condition and outcome (trained alpha ended low / middle / high): n and the medians of
    the final held-out loss and the activity diagnostics of those replicas."""
    by = [c for c in (run.factors if by is None else by) if c in run.replicas]
    frame = final_frame(run, by, metrics)
    frame = frame[frame["outcome"].notna()]
    return medians_by(frame, [*by, "outcome"], [m for m in metrics if m in frame])


def alpha_trajectories_figure(run, by, title, max_panels=12):
    """Alpha against the training step, one line per replica coloured by where it ended (low /
    middle / high), one panel per condition; past `max_panels` conditions, those with the most
    replicas ending at 0 or 1."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by = [c for c in by if c in run.replicas]
    frame = final_frame(run, by)
    da = run.metric("alpha")
    steps = da["step"].values
    values = pd.DataFrame(da.values, index=steps, columns=da["replica"].values)
    groups = stats.grouped(frame, by)
    shown = "every condition"
    if len(groups) > max_panels:  # the conditions with the most replicas at an end, in sweep order
        ends = [int(g["outcome"].isin(["low", "high"]).sum()) for _, g in groups]
        keep = sorted(sorted(range(len(groups)), key=lambda i: -ends[i])[:max_panels])
        groups = [groups[i] for i in keep]
        shown = f"the {max_panels} conditions with the most replicas at an end"
    cols = min(4, len(groups))
    rows = int(math.ceil(len(groups) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.5 * rows), dpi=110, squeeze=False, sharey=True)
    colours = {"low": "#b2182b", "middle": "#7f7f7f", "high": "#2166ac"}
    for ax, (key, g) in zip(axes.flat, groups):
        for r, outcome in zip(g.index, g["outcome"]):
            ax.plot(steps, values[r].values, color=colours.get(outcome, "black"), linewidth=0.8, alpha=0.8)
        counts = ", ".join(f"{side} {int((g['outcome'] == side).sum())}" for side in ("low", "middle", "high"))
        ax.set_title("\n".join(_label(c, v) for c, v in zip(by, key)) + f"\n({counts})", fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("alpha", fontsize=7)
    fig.suptitle(f"{title}: trained alpha per replica (red ends <= 0.1, blue >= 0.9); {shown}", fontsize=9)
    fig.tight_layout()
    return fig


def end_fractions_figure(run, x, lines, panels, title):
    """The fractions of replicas ending at alpha >= 0.9 (solid) and <= 0.1 (dashed) against the
    factor `x` (log axis when all positive), one line pair per level of `lines`, one panel per
    level of `panels`, pooled over the other factors; Wilson 95% intervals as bands, n per point
    in the legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    frame = final_frame(run, [c for c in (x, lines, panels) if c])
    frame = frame[frame["outcome"].notna()]
    levels = sorted(frame[panels].unique()) if panels else [None]
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.4), dpi=110, squeeze=False, sharey=True)
    for ax, level in zip(axes[0], levels):
        mine = frame if level is None else frame[frame[panels] == level]
        for k, (line, g) in enumerate(mine.groupby(lines, sort=True) if lines else [(None, mine)]):
            colour = plt.get_cmap("viridis")(k / max(1, mine[lines].nunique() - 1) if lines else 0.3)
            xs, n, hi, lo = [], [], [], []
            for xv, h in g.groupby(x, sort=True):
                xs.append(float(xv))
                n.append(len(h))
                hi.append((int((h["outcome"] == "high").sum()), len(h)))
                lo.append((int((h["outcome"] == "low").sum()), len(h)))
            for counts, style, side in ((hi, "-", ">= 0.9"), (lo, "--", "<= 0.1")):
                frac = [c / m for c, m in counts]
                bounds = np.array([wilson(c, m) for c, m in counts])
                label = f"{lines}={line}: {side}" if lines else side
                ax.plot(xs, frac, style, marker="o", markersize=3, color=colour, label=label + f" (n={min(n)})")
                ax.fill_between(xs, bounds[:, 0], bounds[:, 1], color=colour, alpha=0.12, linewidth=0)
        if all(v > 0 for v in frame[x].astype(float)):
            ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel(x, fontsize=8)
        ax.set_title(f"{panels}={level}" if panels else title, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("fraction of replicas", fontsize=8)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=6)
    fig.suptitle(f"{title}: final alpha >= 0.9 (solid) and <= 0.1 (dashed); bands: Wilson 95%", fontsize=9)
    fig.tight_layout()
    return fig


def fixed_alpha_panels(run, by, metric, title):
    """The fixed-alpha scan, one panel per condition: each replica's final `metric` against alpha
    (points), the median per alpha (line), the lines of one seed joined faintly (the pairs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by = [c for c in by if c != "alpha_init" and c in run.replicas]
    frame = final_frame(run, [*by, "alpha_init"], [metric])
    groups = stats.grouped(frame, by)
    cols = min(4, len(groups))
    rows = int(math.ceil(len(groups) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), dpi=110, squeeze=False)
    for ax, (key, g) in zip(axes.flat, groups):
        for _, one in g.groupby("seed"):
            one = one.sort_values("alpha_init")
            ax.plot(one["alpha_init"], one[metric], color="#9ecae1", linewidth=0.6)
        ax.scatter(g["alpha_init"], g[metric], s=9, color="#3182bd", zorder=3)
        med = g.groupby("alpha_init")[metric].median()
        ax.plot(med.index, med.values, color="black", marker="o", markersize=3, linewidth=1.4, zorder=4)
        if "baseline_loss" in g and metric.endswith("loss"):
            ax.axhline(float(g["baseline_loss"].median()), color="#b2182b", linestyle="--", linewidth=0.8)
        ax.set_title(", ".join(f"{c}={v}" for c, v in zip(by, key)) + f" (n={g['seed'].nunique()} seeds)", fontsize=8)
        ax.set_xlabel("alpha (fixed; 0 free, 1 Dale)", fontsize=7)
        ax.set_ylabel(f"final {metric}", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    fig.suptitle(f"{title}: points are replicas, thin lines join one seed, black the median; "
                 "dashed: baseline (constant output)", fontsize=8)
    fig.tight_layout()
    return fig


def _markdown(df, floats="{:.3g}"):
    if df.empty:
        return "(no rows)\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            cells.append(floats.format(v) if isinstance(v, (float, np.floating)) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def outcome_figure(table, by, title):
    """Per condition one horizontal bar split into the fractions of replicas whose final alpha is
    <= 0.1 (left, red), between (grey) and >= 0.9 (right, blue), the counts written in, and the
    Wilson 95% intervals of the two end fractions as black whiskers at the segments' inner edges."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [", ".join(_label(c, row[c]) for c in by) or "all" for _, row in table.iterrows()]
    n = np.maximum(table["n"].astype(int).values, 1)
    low, mid, high = (table[c].astype(int).values for c in ("n_low", "n_middle", "n_high"))
    fig, ax = plt.subplots(figsize=(9.5, 0.26 * len(labels) + 1.3), dpi=110)
    y = np.arange(len(labels))[::-1]
    left = 0
    for counts, colour, name in ((low, "#b2182b", "alpha <= 0.1"), (mid, "#bdbdbd", "between"),
                                 (high, "#2166ac", "alpha >= 0.9")):
        frac = counts / n
        ax.barh(y, frac, left=left, height=0.75, color=colour, label=name)
        for yi, f, l, c in zip(y, frac, np.broadcast_to(left, frac.shape), counts):
            if c:
                ax.text(l + f / 2, yi, str(c), ha="center", va="center", fontsize=6,
                        color="white" if colour != "#bdbdbd" else "black")
        left = left + frac
    for yi, k_low, k_high, m in zip(y, low, high, n):
        lo, hi = wilson(int(k_low), int(m))
        ax.plot([lo, hi], [yi + 0.3, yi + 0.3], color="black", linewidth=0.8)
        lo, hi = wilson(int(k_high), int(m))
        ax.plot([1 - hi, 1 - lo], [yi - 0.3, yi - 0.3], color="black", linewidth=0.8)
    ax.set_yticks(y, [f"{lab} (n={m})" for lab, m in zip(labels, n)], fontsize=6)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of replicas (final alpha)", fontsize=8)
    ax.set_title(title + ": counts in the bars; whiskers: Wilson 95% intervals\n"
                 "(upper: fraction <= 0.1 from the left, lower: fraction >= 0.9 from the right)", fontsize=7)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    fig.tight_layout()
    return fig


def fixed_alpha_figure(table, replicas, by, metric, title):
    """Held-out metric against the fixed alpha: every replica a point, the mean of each condition
    a line with its honest band (the range below 5 replicas, else a bootstrap interval)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    for key, g in stats.grouped(table, by):
        label = ", ".join(f"{c}={v}" for c, v in zip(by, key)) or "all"
        g = g.sort_values("alpha_init")
        line, = ax.plot(g["alpha_init"], g["mean"], marker="o", label=label)
        ax.fill_between(g["alpha_init"].astype(float), g["lo"].astype(float), g["hi"].astype(float),
                        color=line.get_color(), alpha=0.2, linewidth=0)
        mine = replicas
        for c, v in zip(by, key):
            mine = mine[mine[c] == v]
        ax.scatter(mine["alpha_init"], mine[metric], s=10, color=line.get_color(), alpha=0.6, linewidths=0)
    ax.set_xlabel("alpha (fixed; 0 free, 1 Dale)")
    ax.set_ylabel(f"final {metric}")
    ax.set_title(f"{title}: points are replicas; band: range below {stats.MIN_N_FOR_INTERVAL}, "
                 "else bootstrap 95%", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    fig.tight_layout()
    return fig


def write_study(paths, outdir, by=None):
    """For each file: when alpha was trained, the compact outcome table, the full one (and their
    figures: outcome bars, alpha trajectories), how early alpha was decided, the early-gradient
    table and the activity of the replicas by outcome; when it was fixed, the scan, its paired
    test (alpha 1 against alpha 0, seed by seed), the activity by alpha and their figures. Writes
    DIR/study.md and returns its markdown."""
    from .loading import load
    import matplotlib.pyplot as plt
    os.makedirs(outdir, exist_ok=True)
    parts = []
    for path in paths:
        run = load(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        factors = list(run.factors if by is None else by)
        parts.append(f"## {stem}\n\n{run.n_replicas} replicas, factors: {', '.join(factors) or 'none'}\n")
        fixed = "lr_alpha" in run.replicas and bool((run.replicas["lr_alpha"] == 0).all())
        metric = "eval_loss" if run.has_metric("eval_loss") else "loss"
        activity = [m for m in ACTIVITY_METRICS if run.has_metric(m)]
        if fixed:
            table = fixed_alpha_scan(run, factors, metric)
            parts.append(f"Alpha fixed (lr_alpha = 0); final {metric} per alpha ({stats.INTERVAL_TEXT}); "
                         "`best` marks the lowest mean per condition.\n\n" + _markdown(table))
            parts.append(f"Paired by seed (the same initial weights and batches): in how many seeds the Dale "
                         f"end (alpha = 1) reached a lower final {metric} than the free end (alpha = 0); "
                         "two-sided sign test.\n\n" + _markdown(paired_fixed_alpha(run, factors, metric)))
            if "accuracy" != metric and run.has_metric("eval_accuracy"):
                acc = fixed_alpha_scan(run, factors, "eval_accuracy")
                parts.append("Final held-out accuracy per alpha (classification tasks; `best`: the highest "
                             "mean).\n\n"
                             + _markdown(acc[acc["n"] > 0].dropna(subset=["mean"])))
            if activity:
                frame = final_frame(run, [*factors], activity)
                rest = [f for f in factors if f != "alpha_init"]
                parts.append("Activity on the held-out probe batch at the end, median per alpha.\n\n"
                             + _markdown(medians_by(frame, [*rest, "alpha_init"], activity)))
            rest = [f for f in factors if f != "alpha_init"]
            fig = fixed_alpha_figure(table, fixed_alpha_replicas(run, factors, metric), rest, metric, stem)
            fig.savefig(os.path.join(outdir, f"{stem}_fixed_alpha.png"))
            fig = fixed_alpha_panels(run, factors, metric, stem)
            fig.savefig(os.path.join(outdir, f"{stem}_fixed_alpha_panels.png"))
        else:
            parts.append("Where trained alpha ended (low <= 0.1 < middle < 0.9 <= high), per condition; "
                         f"`n_learned`: replicas whose final {metric} is at least 10% below the task's "
                         "baseline.\n\n" + _markdown(compact_outcomes(run, factors, metric)))
            table = outcome_fractions(run, factors)
            parts.append("The same, with both fractions and their Wilson 95% intervals.\n\n" + _markdown(table))
            fig = outcome_figure(table, factors, stem)
            fig.savefig(os.path.join(outdir, f"{stem}_outcomes.png"))
            fig = alpha_trajectories_figure(run, factors, stem)
            fig.savefig(os.path.join(outdir, f"{stem}_alpha_trajectories.png"))
            if "lr_alpha" in factors and run.replicas["lr_alpha"].nunique() > 1:
                lines = "alpha_init" if "alpha_init" in factors else None
                panels = "task" if "task" in factors else None
                fig = end_fractions_figure(run, "lr_alpha", lines, panels, stem)
                fig.savefig(os.path.join(outdir, f"{stem}_end_fractions.png"))
            parts.append("How early was it decided? Among replicas that ended low or high, the fraction "
                         "whose alpha had already moved toward its end by each step.\n\n"
                         + _markdown(decided_by(run, factors)))
            if run.has_metric("alpha_grad"):
                parts.append("Does the mean gradient of alpha over the first 5 logged steps predict the "
                             "sign of its change?\n\n" + _markdown(early_signal(run, factors)))
            if run.has_metric("grad_norm_dale") and run.has_metric("grad_norm_free"):
                parts.append("The two parts' gradient norms over the first 5 logged steps, "
                             "|dL/dW_dale| / |dL/dW_free|, by where alpha ended (medians).\n\n"
                             + _markdown(early_norm_ratio(run, factors)))
            parts.append(f"Final {metric} and activity (held-out probe batch) by where alpha ended, medians."
                         "\n\n" + _markdown(winners_activity(run, factors, (metric, *activity))))
        plt.close("all")
    text = "# Alpha study tables\n\n" + "\n".join(parts)
    with open(os.path.join(outdir, "study.md"), "w") as f:
        f.write(text)
    return text


def pick_winners(run, where, metric="eval_loss"):
    """Among the replicas matching `where` ({column: value} of /replicas), the one with the lowest
    final `metric` of those whose trained alpha ended high and of those that ended low: a dict
    {"high": id, "low": id} (an outcome no replica reached is left out)."""
    frame = final_frame(run, list(where), [metric])
    for column, value in where.items():
        if column not in frame:
            raise KeyError(f"{run.path}: no /replicas column {column!r}")
        frame = frame[frame[column].astype(str) == str(value)]
    out = {}
    for side in ("high", "low"):
        mine = frame[(frame["outcome"] == side) & np.isfinite(frame[metric])]
        if len(mine):
            out[side] = int(mine[metric].idxmin())
    return out


def fixed_point_summary(path):
    """One fixed-point file (dalesim fixedpoints): how many fixed points, how many stable, the
    largest real part of any eigenvalue of the stable ones' Jacobians (the slowest decay, 1/ms),
    the median Henrici departure from normality, and how many starts converged."""
    import h5py
    with h5py.File(path, "r") as f:
        stable = f["stable"][()].astype(bool)
        real = f["eigenvalue_real"][()]
        henrici = f["henrici"][()]
        count = f["count"][()]
    slowest = float(real[stable].max()) if stable.any() else np.nan
    return {"n_fixed_points": int(stable.size), "n_stable": int(stable.sum()),
            "slowest_stable_eigenvalue": slowest,
            "median_henrici": float(np.median(henrici)) if henrici.size else np.nan,
            "starts_converged": int(count.sum()) if count.size else 0}


def ends_of(run, where):
    """{"high": [ids], "low": [ids]}: the replicas matching `where` whose alpha ended >= 0.9 / <= 0.1."""
    frame = final_frame(run, list(where))
    for column, value in where.items():
        if column not in frame:
            raise KeyError(f"{run.path}: no /replicas column {column!r}")
        frame = frame[frame[column].astype(str) == str(value)]
    return {side: [int(r) for r in frame.index[frame["outcome"] == side]] for side in ("high", "low")}


def winners_fixed_points(path, where, inputs, outdir, binary="dalesim", metric="eval_loss", every=False):
    """The fixed points of the best replica ending at alpha >= 0.9 and of the best ending <= 0.1
    (pick_winners), or with `every` of all the replicas ending at an end, under each constant
    input of `inputs` ({name: [x1, ..., xI]}), found by `binary fixedpoints` and written to
    DIR/fp_<outcome>_<replica>_<name>.h5; returns the summary table (one row per replica and
    input) and writes it, with medians per outcome and input when `every`, to
    DIR/fixed_points.md."""
    import subprocess
    from .loading import load
    run = load(path)
    os.makedirs(outdir, exist_ok=True)
    chosen = ends_of(run, where) if every else {k: [v] for k, v in pick_winners(run, where, metric).items()}
    final = final_frame(run, [], [metric])
    rows = []
    for side, replica in ((side, r) for side, ids in chosen.items() for r in ids):
        for name, x in inputs.items():
            fp = os.path.join(outdir, f"fp_{side}_{replica}_{name}.h5")
            cmd = [binary, "fixedpoints", path, "--replica", str(replica), "--input", ",".join(repr(float(v)) for v in x),
                   "--seed", "0", "-o", fp, "--force"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise ValueError(f"{' '.join(cmd)}: {done.stderr.strip()}")
            rows.append({"outcome": side, "replica": replica, "final_alpha": float(final.loc[replica, "alpha_final"]),
                         metric: float(final.loc[replica, metric]), "input": name, **fixed_point_summary(fp)})
    table = pd.DataFrame(rows)
    where_text = ", ".join(f"{k}={v}" for k, v in where.items())
    which = ("every replica whose alpha ended >= 0.9 or <= 0.1" if every else
             "the lowest final held-out loss among those whose alpha ended >= 0.9, and among those ending <= 0.1")
    text = (f"# Fixed points ({os.path.basename(path)}: {where_text})\n\n"
            f"Per replica ({which}) and constant input: the fixed points found, the stable ones, the slowest "
            "stable eigenvalue (1/ms) and the median Henrici departure from normality.\n\n" + _markdown(table))
    if every and len(table):
        table["any_stable"] = table["n_stable"] > 0
        summary = medians_by(table, ["input", "outcome"], ["n_fixed_points", "n_stable", "median_henrici"])
        summary = summary.rename(columns={"median_median_henrici": "median_henrici"})
        summary["n_with_a_stable_point"] = table.groupby(["input", "outcome"], sort=True)["any_stable"].sum().values
        text += "\nPer input and outcome: n replicas, medians, and how many have a stable fixed point.\n\n" + _markdown(summary)
    with open(os.path.join(outdir, "fixed_points.md"), "w") as f:
        f.write(text)
    return table
