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
    return max(0.0, centre - half), min(1.0, centre + half)


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
    with the lowest mean (`best`). For sweeps that train with lr_alpha = 0 on a grid of
    model.alpha_init (data/sweeps/study/fixed_alpha.toml)."""
    by = [f for f in (run.factors if by is None else by) if f != "alpha_init"]
    frame = fixed_alpha_replicas(run, by, metric)
    table = stats.summarize(frame, [*by, "alpha_init"], metric)
    table["best"] = False
    groups = table.groupby(by, sort=False).groups.values() if by else [table.index]
    for idx in groups:
        means = table.loc[idx, "mean"].astype(float)
        if means.notna().any():
            table.loc[means.idxmin(), "best"] = True
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
    groups = frame.groupby(by[0] if len(by) == 1 else by, sort=True) if by else [((), frame)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        k, n = int(g["agree"].sum()), len(g)
        lo, hi = wilson(k, n)
        rows.append([*key, n, k, k / n if n else np.nan, lo, hi])
    return pd.DataFrame(rows, columns=[*by, "n", "n_agree", "frac_agree", "frac_agree_lo", "frac_agree_hi"])


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
    """Per condition, three bars: the fraction of replicas whose final alpha is <= 0.1, between,
    and >= 0.9, each with its Wilson 95% interval; n in the condition's label."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [(", ".join(f"{c}={row[c]}" for c in by) or "all") + f"\n(n={int(row['n'])})"
              for _, row in table.iterrows()]
    n = table["n"].astype(int).values
    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(labels) + 2.5), 4.4), dpi=120)
    x = np.arange(len(labels))
    width = 0.27
    sides = [("n_low", "alpha <= 0.1", "#b2182b"), ("n_middle", "between", "#7f7f7f"),
             ("n_high", "alpha >= 0.9", "#2166ac")]
    for k, (column, label, colour) in enumerate(sides):
        counts = table[column].astype(int).values
        frac = counts / np.maximum(n, 1)
        bounds = np.array([wilson(int(c), int(m)) for c, m in zip(counts, n)])
        ax.bar(x + (k - 1) * width, frac, width, color=colour, label=label)
        ax.errorbar(x + (k - 1) * width, frac, yerr=[frac - bounds[:, 0], bounds[:, 1] - frac], fmt="none",
                    ecolor="black", capsize=2, linewidth=0.8)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of replicas (final alpha)")
    ax.set_title(title + " (bars: Wilson 95% intervals)", fontsize=9)
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
    groups = table.groupby(by, sort=True) if by else [((), table)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
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
    """For each file: the outcome table (and figure) when alpha was trained, the fixed-alpha scan
    when it was not, the early-signal table when alpha_grad was recorded. Returns the markdown."""
    from .loading import load
    os.makedirs(outdir, exist_ok=True)
    parts = []
    for path in paths:
        run = load(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        factors = list(run.factors if by is None else by)
        parts.append(f"## {stem}\n\n{run.n_replicas} replicas, factors: {', '.join(factors) or 'none'}\n")
        fixed = "lr_alpha" in run.replicas and bool((run.replicas["lr_alpha"] == 0).all())
        if fixed:
            metric = "eval_loss" if run.has_metric("eval_loss") else "loss"
            table = fixed_alpha_scan(run, factors, metric)
            parts.append(f"Alpha fixed (lr_alpha = 0); final {metric} per alpha ({stats.INTERVAL_TEXT}); "
                         "`best` marks the lowest mean per condition.\n\n" + _markdown(table))
            rest = [f for f in factors if f != "alpha_init"]
            fig = fixed_alpha_figure(table, fixed_alpha_replicas(run, factors, metric), rest, metric, stem)
            fig.savefig(os.path.join(outdir, f"{stem}_fixed_alpha.png"))
        else:
            table = outcome_fractions(run, factors)
            parts.append("Where trained alpha ended, per replica (fractions with Wilson 95% intervals).\n\n"
                         + _markdown(table))
            fig = outcome_figure(table, factors, stem)
            fig.savefig(os.path.join(outdir, f"{stem}_outcomes.png"))
            if run.has_metric("alpha_grad"):
                parts.append("Does the mean gradient of alpha over the first 5 logged steps predict the "
                             "sign of its change?\n\n" + _markdown(early_signal(run, factors)))
        import matplotlib.pyplot as plt
        plt.close("all")
    text = "# Alpha study tables\n\n" + "\n".join(parts)
    with open(os.path.join(outdir, "study.md"), "w") as f:
        f.write(text)
    return text
