"""Group-by-condition helpers: the mean and a 95% confidence band over the seeds of each condition."""
import numpy as np
import pandas as pd

# Two-sided 95% Student t quantiles by degrees of freedom (no scipy needed); 1.96 beyond the table.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
        18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t95(dof):
    """95% two-sided t quantile for `dof` degrees of freedom (the next smaller tabulated value)."""
    if dof < 1:
        return np.nan
    keys = [k for k in _T95 if k <= dof]
    return _T95[max(keys)] if dof <= 120 else 1.960


def summarize(df, by, value):
    """Mean, band (lo, hi: 95% CI of the mean over the rows of each group) and n per group of `by`.
    NaNs are left out; a group of one has lo = hi = mean."""
    by = list(by)
    if df.empty:
        return pd.DataFrame(columns=[*by, "mean", "lo", "hi", "n"])
    g = df.groupby(by, dropna=False, sort=True)[value]
    out = g.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
    half = np.array([t95(n - 1) for n in out["n"]]) * out["std"].fillna(0).values / np.sqrt(out["n"].clip(lower=1))
    half = np.where(out["n"].values > 1, half, 0.0)
    out["lo"] = out["mean"] - half
    out["hi"] = out["mean"] + half
    return out.drop(columns="std")


def condition_curves(run, metric, by=None, geometric=False):
    """Per condition (the swept axes in `by`, default all of them) and step: mean, lo, hi, n over seeds
    (and over any swept axis not in `by`). `geometric` summarises log(metric) and returns the
    geometric mean and its band (for losses spanning decades; values <= 0 are left out)."""
    by = list(run.axes if by is None else by)
    table = run.checkpoint_table([metric]) if metric in run.checkpoints.data_vars else run.history_table([metric])
    if not geometric:
        return summarize(table, [*by, "step"], metric)
    table = table.copy()
    values = table[metric].astype(float).values
    table[metric] = np.log(np.where(values > 0, values, np.nan))
    out = summarize(table, [*by, "step"], metric)
    for c in ("mean", "lo", "hi"):
        out[c] = np.exp(out[c].astype(float))
    return out


def condition_final(run, metric, by=None):
    """Per condition: mean, lo, hi, n over seeds of each replica's last finite value of `metric`."""
    by = list(run.axes if by is None else by)
    final = run.final(metric)
    df = run.replicas[[c for c in by if c in run.replicas]].copy()
    df[metric] = final.reindex(df.index).values
    return summarize(df, by, metric)


def conditions(run, by=None):
    """The distinct conditions (values of the swept axes in `by`) with their replica counts."""
    by = list(run.axes if by is None else by)
    if not by:
        return pd.DataFrame({"n": [run.n_replicas]})
    return run.replicas.groupby(by, sort=True).size().rename("n").reset_index()
