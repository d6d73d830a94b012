"""Loading a dalesim output file into pandas tables and xarray datasets (layout: docs/hdf5-layout.md).

Works on complete files and on files whose run is still going or was killed: what is missing or
inconsistent is recorded in ``Run.problems`` instead of raising.
"""
import os

# A running writer holds HDF5's file lock; readers only peek (see docs/hdf5-layout.md).
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from .progress import read_progress  # noqa: E402

FORMAT_VERSION = 1


class Run:
    """One output file, loaded.

    attrs        root attributes (format, status, sweep_text, backend, device, ...)
    status       "running" (in progress or killed) or "complete"
    replicas     pandas DataFrame, one row per replica, indexed by replica id
    axes         the swept /replicas columns that define a condition (seed excluded)
    factors      the axes as the figures group them: a [[sweep.zip]] group of axes is one factor,
                 a column of `replicas` named "a & b" whose values read "a=..., b=..."
    zip_groups   {factor name: [its axes]} of the zipped factors
    factor_levels  {factor name: its values in sweep order} of the zipped factors
    history      xarray Dataset [step, replica] of per-step metrics, swept columns as coordinates
    checkpoints  xarray Dataset [step, replica] of checkpoint diagnostics
    weight_groups  {group name: WeightGroup}, weights by shape (read on demand)
    progress     the progress log beside the file (a Progress), or None
    problems     what could not be read, as sentences
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.attrs = {}
        self.status = "unknown"
        self.replicas = pd.DataFrame()
        self.axes = []
        self.factors = []
        self.zip_groups = {}
        self.factor_levels = {}
        self.history = xr.Dataset()
        self.checkpoints = xr.Dataset()
        self.weight_groups = {}
        self.progress = None
        self.problems = []
        self.condition_accuracy = None  # xarray [step, replica, condition] of the evaluation set, or None
        self.selection = None  # why a subset() was taken, e.g. "replicas that beat the baseline by 10%"

    # ---- facts -------------------------------------------------------------------------------
    @property
    def n_replicas(self):
        return len(self.replicas)

    @property
    def n_steps_planned(self):
        """Training steps the run was started for (the resolved config's train.n_steps)."""
        try:
            import tomllib
            return int(tomllib.loads(self.attrs.get("resolved_config", ""))["train"]["n_steps"])
        except (ImportError, KeyError, TypeError, ValueError):
            return self.progress.n_steps if self.progress else None

    def has_metric(self, name):
        """True when `name` is a history or checkpoint metric with at least one finite value."""
        for ds in (self.history, self.checkpoints):
            if name in ds.data_vars and ds[name].size and np.isfinite(ds[name].values).any():
                return True
        return False

    def metric(self, name):
        """The [step, replica] DataArray of a history or checkpoint metric (KeyError if absent)."""
        for ds in (self.history, self.checkpoints):
            if name in ds.data_vars:
                return ds[name]
        raise KeyError(f"{self.path}: no metric {name!r} (history: {sorted(self.history.data_vars)}, "
                       f"checkpoints: {sorted(self.checkpoints.data_vars)})")

    def missing(self, *names):
        """A sentence naming which of the metrics `names` have no finite value yet, or None."""
        absent = [n for n in names if not self.has_metric(n)]
        if not absent:
            return None
        where = "not recorded in this file" if self.status == "complete" else "not recorded (yet)"
        return f"{', '.join(absent)} {where}"

    def subset(self, replica_ids, why=None):
        """A Run of only the replicas `replica_ids` (the same file; `why` is recorded in `selection`)."""
        ids = [int(r) for r in replica_ids]
        out = Run(self.path)
        out.__dict__.update(self.__dict__)
        out.replicas = self.replicas.loc[ids]
        out.history = self.history.sel(replica=ids) if self.history.sizes.get("replica") else self.history
        out.checkpoints = self.checkpoints.sel(replica=ids) if self.checkpoints.sizes.get("replica") else self.checkpoints
        out.weight_groups = self.weight_groups
        if self.condition_accuracy is not None:
            out.condition_accuracy = self.condition_accuracy.sel(replica=ids)
        out.selection = why
        return out

    # ---- tidy tables -------------------------------------------------------------------------
    def _tidy(self, ds, metrics):
        metrics = [m for m in (metrics or list(ds.data_vars)) if m in ds.data_vars]
        if not metrics or ds.sizes.get("step", 0) == 0:
            return pd.DataFrame(columns=["step", "replica", *self.condition_columns(), *metrics])
        df = ds[metrics].reset_coords(drop=True).to_dataframe().reset_index()
        cols = [c for c in self.condition_columns() if c in self.replicas]
        return df.merge(self.replicas[cols], left_on="replica", right_index=True, how="left")

    def condition_columns(self):
        cols = [*self.axes, *[f for f in self.factors if f not in self.axes]]
        return [*cols, "seed"] if "seed" not in cols else cols

    def history_table(self, metrics=None):
        """Long table: one row per (step, replica), the swept columns and seed, one column per metric."""
        return self._tidy(self.history, metrics)

    def checkpoint_table(self, metrics=None):
        """Long table: one row per (checkpoint step, replica), as history_table."""
        return self._tidy(self.checkpoints, metrics)

    def final(self, name):
        """Per-replica last finite value of a metric (NaN where none), as a Series indexed by replica."""
        da = self.metric(name)
        values = da.values
        out = np.full(values.shape[1] if values.ndim == 2 else 0, np.nan)
        for r in range(out.size):
            finite = np.flatnonzero(np.isfinite(values[:, r]))
            if finite.size:
                out[r] = values[finite[-1], r]
        return pd.Series(out, index=pd.Index(da["replica"].values, name="replica"), name=name)

    def condition_accuracy_table(self):
        """Long table of the last checkpoint's evaluation-set accuracy per trial condition: one row per
        (replica, condition) with the task, the condition's name, the factors and seed."""
        import pandas as pd
        if self.condition_accuracy is None or "conditions" not in self.replicas:
            return pd.DataFrame(columns=["replica", "task", "condition", "accuracy"])
        last = self.condition_accuracy.isel(step=-1).values
        rows = []
        for m, rid in enumerate(self.condition_accuracy["replica"].values):
            joined = self.replicas.loc[rid, "conditions"]
            for c, name in enumerate(joined.split("; ") if joined else []):
                rows.append({"replica": int(rid), "task": self.replicas.loc[rid, "task"], "condition": name,
                             "accuracy": last[m, c]})
        df = pd.DataFrame(rows, columns=["replica", "task", "condition", "accuracy"])
        cols = [c for c in self.condition_columns() if c in self.replicas and c != "task"]
        return df.merge(self.replicas[cols], left_on="replica", right_index=True, how="left")

    # ---- weights -----------------------------------------------------------------------------
    def read_weights(self, field, checkpoint=-1):
        """{replica id: array} of a weight field (W_rec, W_in, singular_values, ...) at a checkpoint
        index (negative counts from the last). Replicas without that checkpoint are left out."""
        out = {}
        with _open(self.path) as f:
            for group in self.weight_groups.values():
                if field not in f[group.path]:
                    continue
                ds = f[group.path][field]
                n = ds.shape[0]
                c = checkpoint + n if checkpoint < 0 else checkpoint
                if not 0 <= c < n:
                    continue
                try:
                    block = ds[c]
                except (OSError, RuntimeError):  # not flushed before the run was killed
                    continue
                for m, rid in enumerate(group.replica_ids):
                    out[int(rid)] = block[m]
        return out

    def __repr__(self):
        return (f"<dalesim Run {self.path!r}: {self.status}, {self.n_replicas} replicas, "
                f"{self.history.sizes.get('step', 0)} logged steps, "
                f"{self.checkpoints.sizes.get('step', 0)} checkpoints, axes {self.axes}>")


class WeightGroup:
    """Replicas of one shape (N, I, O): their weights share datasets [checkpoint, replica, ...]."""

    def __init__(self, name, path, replica_ids, n_units, n_checkpoints):
        self.name, self.path = name, path
        self.replica_ids = np.asarray(replica_ids)
        self.n_units, self.n_checkpoints = n_units, n_checkpoints

    def __repr__(self):
        return f"<WeightGroup {self.name}: {len(self.replica_ids)} replicas, {self.n_checkpoints} checkpoints>"


def _zip_key_columns(keys, axes):
    """The /replicas columns of the swept keys of one [[sweep.zip]] table (the writer's naming:
    task.name -> task, a known parameter by its own name, else the key with '.' -> '_')."""
    cols = []
    for key in keys:
        names = ["task"] if key == "task.name" else [key, key.split(".", 1)[-1], key.replace(".", "_")]
        col = next((n for n in names if n in axes), None)
        if col is not None and col not in cols:
            cols.append(col)
    return cols


def _add_zip_factors(run):
    """Sets run.factors: the axes, with the axes of each [[sweep.zip]] table joined into one factor."""
    run.factors = list(run.axes)
    try:
        import tomllib
        sweep = tomllib.loads(run.attrs.get("sweep_text", "")).get("sweep", {})
    except Exception:  # no tomllib (Python < 3.11) or a text it cannot read: axes stay separate
        return
    zips = sweep.get("zip", [])
    zips = [zips] if isinstance(zips, dict) else zips
    for table in zips:
        if not isinstance(table, dict):
            continue
        cols = _zip_key_columns(list(table), run.axes)
        if len(cols) < 2:
            continue
        name = " & ".join(cols)
        labels = [", ".join(f"{c}={_format(v)}" for c, v in zip(cols, row))
                  for row in run.replicas[cols].itertuples(index=False)]
        run.replicas[name] = labels
        run.factor_levels[name] = list(dict.fromkeys(labels))  # replicas are in sweep order
        run.zip_groups[name] = cols
        at = min(run.factors.index(c) for c in cols)
        run.factors = [f for f in run.factors if f not in cols]
        run.factors.insert(min(at, len(run.factors)), name)


def _format(value):
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _open(path):
    try:
        return h5py.File(path, "r", locking=False)
    except TypeError:  # h5py older than 3.5 has no `locking`; the environment variable covers it
        return h5py.File(path, "r")


def _attr(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _column(ds):
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.asarray(ds.asstr()[()], dtype=object)
    return ds[()]


def _readable_rows(ds, n):
    """The longest prefix of rows 0..n-1 of `ds` that reads back: a killed writer can leave rows (and
    the chunks holding them) that the file lists but never received."""
    try:
        ds[:n]
        return n
    except (OSError, RuntimeError):
        lo, hi = 0, n - 1  # rows [0, lo) read; [0, hi + 1) does not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            try:
                ds[:mid]
                lo = mid
            except (OSError, RuntimeError):
                hi = mid - 1
        return lo


def _read_metrics(f, name, run, replica_ids):
    """Reads the [step, replica] datasets of group `name` into an xarray Dataset."""
    if name not in f:
        run.problems.append(f"group /{name} is missing")
        return xr.Dataset()
    g = f[name]
    if "step" not in g:
        run.problems.append(f"/{name}/step is missing")
        return xr.Dataset()
    arrays = {}
    for key, ds in g.items():
        if isinstance(ds, h5py.Dataset) and ds.ndim == 2 and ds.dtype.kind == "f":
            arrays[key] = ds
    steps = g["step"]
    # A writer appends the step first, then each metric: while it runs they may differ by a row.
    listed = min([steps.shape[0], *[a.shape[0] for a in arrays.values()]])
    if any(a.shape[0] != listed for a in [steps, *arrays.values()]):
        run.problems.append(f"/{name}: datasets of unequal length (a write in progress); "
                            f"read the first {listed} rows")
    n = listed
    for ds in [steps, *arrays.values()]:
        n = _readable_rows(ds, n) if n else 0
    if n < listed:
        run.problems.append(f"/{name}: rows {n} to {listed - 1} cannot be read (written after the last flush "
                            "of a run that was killed or is still going); read the first {n}".format(n=n))
    data = {}
    for key, ds in arrays.items():
        try:
            data[key] = (("step", "replica"), np.asarray(ds[:n], dtype=float))
        except (OSError, RuntimeError, ValueError) as e:
            run.problems.append(f"/{name}/{key} could not be read ({e})")
    coords = {"step": steps[:n].astype(np.int64), "replica": replica_ids}
    for col in run.condition_columns():
        if col in run.replicas:
            coords[col] = ("replica", run.replicas[col].values)
    return xr.Dataset(data, coords=coords, attrs={"group": name})


def load(path):
    """Loads a dalesim output file. Raises FileNotFoundError or ValueError for a missing or foreign
    file; anything missing inside a dalesim file is listed in Run.problems."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    run = Run(path)
    try:
        f = _open(path)
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 file or truncated ({e})") from e
    with f:
        run.attrs = {k: _attr(v) for k, v in f.attrs.items()}
        if run.attrs.get("format") != "dalesim":
            raise ValueError(f"{path}: not a dalesim output file (no 'format' attribute equal to \"dalesim\")")
        version = int(run.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {version} is newer than this package reads "
                             f"({FORMAT_VERSION}); update dalesim")
        run.status = run.attrs.get("status", "unknown")

        columns = {}
        if "replicas" in f:
            for key, ds in f["replicas"].items():
                if key == "replica" or not isinstance(ds, h5py.Dataset):
                    continue
                columns[key] = _column(ds)
        else:
            run.problems.append("group /replicas is missing")
        run.replicas = pd.DataFrame(columns)
        if "id" in run.replicas:
            run.replicas.index = pd.Index(run.replicas["id"].astype(int).values, name="replica")
        replica_ids = run.replicas.index.values

        declared = str(run.attrs.get("sweep_axes", "")).split()
        if not declared and "history" in f and "loss" in f["history"]:
            declared = str(_attr(f["history/loss"].attrs.get("coordinates", ""))).split()
        run.axes = [a for a in declared if a != "seed" and a in run.replicas]

        _add_zip_factors(run)
        run.history = _read_metrics(f, "history", run, replica_ids)
        run.checkpoints = _read_metrics(f, "checkpoints", run, replica_ids)
        by_condition = f.get("checkpoints/eval_accuracy_by_condition")
        if by_condition is not None and run.checkpoints.sizes.get("step"):
            n = run.checkpoints.sizes["step"]
            try:
                run.condition_accuracy = xr.DataArray(
                    np.asarray(by_condition[:n], dtype=float), dims=("step", "replica", "condition"),
                    coords={"step": run.checkpoints["step"].values, "replica": replica_ids})
            except (OSError, RuntimeError, ValueError) as e:
                run.problems.append(f"/checkpoints/eval_accuracy_by_condition could not be read ({e})")

        weights = f.get("checkpoints/weights")
        if weights is not None:
            for name, g in weights.items():
                if not isinstance(g, h5py.Group) or "replica" not in g or "W_rec" not in g:
                    continue
                run.weight_groups[name] = WeightGroup(name, g.name, g["replica"][()], int(g["W_rec"].shape[2]),
                                                      int(g["W_rec"].shape[0]))
    run.progress = read_progress(path + ".progress")
    return run
