"""The figures of where alpha goes: every replica's trajectory, each replica's final alpha and its
change (counts, sign test, bimodality flag), and the final alpha over two factors."""
import numpy as np

from ._plot import (_curves, _figure, _fmt, _label, _levels, _note, _pooled, _progress_note, _run,
                    _varying, missing_figure)
from .stats import HIGH_ALPHA, LOW_ALPHA, alpha_change, alpha_moves, bounds_of, condition_final


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
