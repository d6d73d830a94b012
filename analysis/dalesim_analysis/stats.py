"""Group-by-condition helpers: per condition, the mean with an honest interval (the range of the
replicas below 5 of them, a bootstrap interval of the mean from 5 on, clipped to the quantity's
range), the change of alpha per replica with a sign test, and a bimodality flag."""
import math

import numpy as np
import pandas as pd

# Below this many replicas a condition shows its points and their range: an interval of the mean
# from 2-4 values says little (the Student t multiplier at n = 2 is 12.7).
MIN_N_FOR_INTERVAL = 5
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261202  # fixed, so that a report drawn twice shows the same intervals

# The range each recorded quantity can take; intervals are clipped to it.
BOUNDS = {
    "alpha": (0.0, 1.0), "accuracy": (0.0, 1.0), "dale_violation": (0.0, 1.0), "loss": (0.0, np.inf),
    "grad_norm": (0.0, np.inf), "mean_rate": (0.0, np.inf), "svd_entropy": (0.0, 1.0),
    "rel_weight_change": (0.0, np.inf), "spectral_radius": (0.0, np.inf), "effective_rank": (0.0, np.inf),
    "rep_alignment": (-1.0, 1.0), "sign_similarity": (0.0, 1.0), "units_unchanged": (0.0, 1.0),
}

# Final alpha in both of these ranges within one condition: the outcome is bimodal.
LOW_ALPHA, HIGH_ALPHA = 0.1, 0.9

INTERVAL_TEXT = (f"mean of the replicas; below {MIN_N_FOR_INTERVAL} replicas the band is their range, "
                 f"from {MIN_N_FOR_INTERVAL} on a bootstrap 95% interval of the mean")


def bounds_of(metric):
    """(lo, hi) a metric can take: BOUNDS, losses and accuracies of held-out splits included."""
    if metric in BOUNDS:
        return BOUNDS[metric]
    for suffix in ("accuracy", "loss"):
        if metric.endswith(suffix):
            return BOUNDS[suffix]
    return (-np.inf, np.inf)


def interval(values, bounds=(-np.inf, np.inf)):
    """(mean, lo, hi, kind) of finite `values`: kind "range" (min, max) below MIN_N_FOR_INTERVAL
    values, else "bootstrap" (percentile 95% interval of the mean, BOOTSTRAP_RESAMPLES resamples);
    lo and hi are clipped to `bounds`. No values: NaNs and kind "none"."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.nan, np.nan, np.nan, "none"
    mean = float(v.mean())
    if v.size < MIN_N_FOR_INTERVAL:
        lo, hi, kind = float(v.min()), float(v.max()), "range"
    else:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        means = v[rng.integers(0, v.size, size=(BOOTSTRAP_RESAMPLES, v.size))].mean(axis=1)
        lo, hi, kind = float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)), "bootstrap"
    return mean, float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds)), kind


def summarize(df, by, value, bounds=None):
    """Per group of `by`: mean, lo, hi (see interval()), interval ("range" or "bootstrap"), n, min
    and max over the rows. NaNs are left out. `bounds` defaults to bounds_of(value)."""
    by = list(by)
    columns = [*by, "mean", "lo", "hi", "interval", "n", "min", "max"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    bounds = bounds_of(value) if bounds is None else bounds
    rows = []
    groups = df.groupby(by, dropna=False, sort=True)[value] if by else [((), df[value])]
    for key, values in groups:
        key = key if isinstance(key, tuple) else (key,)
        v = values.astype(float).values
        finite = v[np.isfinite(v)]
        mean, lo, hi, kind = interval(finite, bounds)
        rows.append([*key, mean, lo, hi, kind, int(finite.size),
                     float(finite.min()) if finite.size else np.nan, float(finite.max()) if finite.size else np.nan])
    return pd.DataFrame(rows, columns=columns)


def condition_curves(run, metric, by=None, geometric=False):
    """Per condition (the factors in `by`, default Run.factors) and step: mean, lo, hi, n over the
    replicas of the condition (seeds and any axis not in `by`). `geometric` summarises log(metric)
    and returns the geometric mean and its band (for losses spanning decades; values <= 0 are left
    out)."""
    by = list(run.factors if by is None else by)
    table = run.checkpoint_table([metric]) if metric in run.checkpoints.data_vars else run.history_table([metric])
    if not geometric:
        return summarize(table, [*by, "step"], metric)
    table = table.copy()
    values = table[metric].astype(float).values
    table[metric] = np.log(np.where(values > 0, values, np.nan))
    out = summarize(table, [*by, "step"], metric, bounds=(-np.inf, np.inf))
    for c in ("mean", "lo", "hi", "min", "max"):
        out[c] = np.exp(out[c].astype(float))
    return out


def _replica_frame(run, by):
    return run.replicas[[c for c in by if c in run.replicas]].copy()


def grouped(df, by):
    """[(key, rows)] per distinct value of the columns `by` in sorted order, key always a tuple;
    one group with key () when `by` is empty."""
    by = list(by)
    if not by:
        return [((), df)]
    return [(k if isinstance(k, tuple) else (k,), g) for k, g in df.groupby(by[0] if len(by) == 1 else by, sort=True)]


def condition_final(run, metric, by=None):
    """Per condition: mean, lo, hi, n over the replicas of each one's last finite value of `metric`."""
    by = list(run.factors if by is None else by)
    df = _replica_frame(run, by)
    df[metric] = run.final(metric).reindex(df.index).values
    return summarize(df, by, metric)


def sign_test(n_up, n_down):
    """Two-sided exact binomial sign test p-value of n_up against n_down (ties left out); 1 when
    there is nothing to test."""
    n = n_up + n_down
    if n == 0:
        return 1.0
    k = min(n_up, n_down)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2 * tail)


def alpha_change(run):
    """Per replica: alpha's first and last finite value and their difference (final - initial),
    a DataFrame indexed by replica (NaN for replicas without alpha)."""
    da = run.metric("alpha")
    values = da.values
    initial = np.full(values.shape[1], np.nan)
    for r in range(values.shape[1]):
        finite = np.flatnonzero(np.isfinite(values[:, r]))
        if finite.size:
            initial[r] = values[finite[0], r]
    final = run.final("alpha").values
    return pd.DataFrame({"initial": initial, "final": final, "change": final - initial},
                        index=pd.Index(da["replica"].values, name="replica"))


def alpha_moves(run, by=None, tolerance=1e-3):
    """Per condition: n replicas with alpha, how many moved up / down by more than `tolerance`
    (final - initial), the sign test p-value, the median change, the counts of final alpha in
    [0, LOW_ALPHA] and [HIGH_ALPHA, 1], and `bimodal`: both of those counts are non-zero."""
    by = list(run.factors if by is None else by)
    change = alpha_change(run)
    df = _replica_frame(run, by).join(change)
    df = df[np.isfinite(df["change"])]
    rows = []
    for key, g in grouped(df, by):
        up, down = int((g["change"] > tolerance).sum()), int((g["change"] < -tolerance).sum())
        low, high = int((g["final"] <= LOW_ALPHA).sum()), int((g["final"] >= HIGH_ALPHA).sum())
        rows.append([*key, len(g), up, down, len(g) - up - down, sign_test(up, down), float(g["change"].median()),
                     low, high, low > 0 and high > 0])
    return pd.DataFrame(rows, columns=[*by, "n", "n_up", "n_down", "n_flat", "sign_test_p", "median_change",
                                       "n_low", "n_high", "bimodal"])


def beats_baseline(run, margin, metric="loss"):
    """Replica ids whose final `metric` beats their task's baseline by the fraction `margin`:
    final loss <= (1 - margin) * baseline_loss (accuracy: >= chance + margin * (1 - chance))."""
    final = run.final(metric)
    if metric == "accuracy":
        chance = run.replicas["chance_accuracy"].reindex(final.index)
        keep = final >= chance + margin * (1 - chance)
    else:
        baseline = run.replicas["baseline_loss"].reindex(final.index)
        keep = final <= (1 - margin) * baseline
    return final.index[keep.fillna(False).values.astype(bool)]


def conditions(run, by=None):
    """The distinct conditions (values of the factors in `by`) with their replica counts."""
    by = list(run.factors if by is None else by)
    if not by:
        return pd.DataFrame({"n": [run.n_replicas]})
    return run.replicas.groupby(by, sort=True).size().rename("n").reset_index()
