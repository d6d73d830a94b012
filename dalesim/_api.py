"""The calls of the dalesim package, each one `dalesim` command (see __init__)."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from . import _toml

_HERE = pathlib.Path(__file__).resolve().parent


class DalesimError(RuntimeError):
    """A dalesim command failed; `exit_code` and `message` say how (docs/errors.md)."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class BadInput(DalesimError, ValueError):
    """Exit code 2: bad input (a key, a value, a replica or checkpoint that does not exist, ...)."""


def binary():
    """Path of the dalesim program: $DALESIM_BINARY, the source tree's build/dalesim, or PATH."""
    env = os.environ.get("DALESIM_BINARY")
    if env:
        return env
    built = _HERE.parent / "build" / "dalesim"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    found = shutil.which("dalesim")
    if found:
        return found
    raise FileNotFoundError("cannot find the dalesim program: build it (README, first command), put it on PATH, "
                            "or set DALESIM_BINARY to its path")


def _call(args, check=True):
    proc = subprocess.run([binary()] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if check and proc.returncode != 0:
        _raise(proc.returncode, proc.stderr or proc.stdout)
    return proc


def _raise(code, text):
    message = (text or "").strip().replace("dalesim: error: ", "") or f"dalesim exited with code {code}"
    raise (BadInput if code == 2 else DalesimError)(message, code)


# ---- sweeps -------------------------------------------------------------------------------------

def sweep_text(sweep):
    """TOML text of a sweep given as a path, TOML text or a dict."""
    if isinstance(sweep, dict):
        return _toml.dumps(sweep)
    if isinstance(sweep, (str, os.PathLike)) and _is_path(sweep):
        return pathlib.Path(sweep).read_text()
    if isinstance(sweep, str):
        return sweep
    raise TypeError("sweep: a path, TOML text or a dict")


class _SweepFile:
    """A sweep as a file the program can read: the user's own path, or a temporary copy."""

    def __init__(self, sweep, where=None):
        self.tmp = None
        if isinstance(sweep, (str, os.PathLike)) and _is_path(sweep):
            self.path = str(sweep)
        else:
            fd, self.path = tempfile.mkstemp(suffix=".toml", prefix="dalesim-sweep-", dir=where)
            with os.fdopen(fd, "w") as f:
                f.write(sweep_text(sweep))
            self.tmp = self.path

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        if self.tmp:
            os.unlink(self.tmp)


def _is_path(s):
    """A path, not TOML text: TOML text of a sweep has at least one `key = value` line."""
    return isinstance(s, os.PathLike) or ("\n" not in s and "=" not in s)


def validate(sweep):
    """Expands and checks the sweep (`dalesim validate`): returns its report as text. Raises BadInput
    naming the key, the value and what is allowed."""
    with _SweepFile(sweep) as path:
        return _call(["validate", path]).stdout


def write_trials(path, inputs, targets, mask=None):
    """Writes numpy trials as a `file`-task dataset: inputs [trial, T, I]; targets [trial, T, O]
    (floats, masked MSE) or integer classes [trial, T] (-1 = not scored, cross-entropy); mask
    [trial, T] or [trial, T, O] (optional). Returns the [task] keys that train on it."""
    import h5py
    import numpy as np
    x = np.asarray(inputs, dtype=np.float32)
    y = np.asarray(targets)
    if x.ndim != 3:
        raise ValueError(f"inputs: shape {x.shape}, expected [trial, T, I]")
    classes = np.issubdtype(y.dtype, np.integer)
    if y.shape[:2] != x.shape[:2] or y.ndim != (2 if classes else 3):
        raise ValueError(f"targets: shape {y.shape} for inputs {x.shape}: expected [trial, T, O] floats or "
                         "[trial, T] integer classes")
    with h5py.File(path, "w") as f:
        f["inputs"] = x
        f["targets"] = y.astype(np.int32 if classes else np.float32)
        if mask is not None:
            f["mask"] = np.asarray(mask, dtype=np.float32)
    task = {"name": "file", "path": str(path), "test_fraction": 0.0}
    if classes:
        task.update(target="class", n_outputs=int(y.max()) + 1)
    return task


def run(sweep, out, backend="auto", progress=True, force=False, resume=False, threads=None, trials=None):
    """Trains the sweep into `out` (`dalesim run`) and returns dalesim.open(out).

    sweep: a path, TOML text or a dict. trials: optional numpy trials (inputs, targets[, mask]) to
    train on: written beside `out` as OUT.trials.h5 and used as the sweep's `file` task.
    progress: True shows the step, rate and ETA (a live line in a notebook, stderr elsewhere)."""
    out = str(out)
    if trials is not None:
        if isinstance(sweep, dict):
            spec = dict(sweep)
        else:
            import tomllib
            spec = tomllib.loads(sweep_text(sweep))
        task = dict(spec.get("task", {}))
        keep = {k: v for k, v in task.items() if k in ("batch",)}
        if isinstance(trials, dict):
            trials = (trials["inputs"], trials["targets"], trials.get("mask"))
        task = write_trials(out + ".trials.h5", *trials)
        task.update(keep)
        spec["task"] = task
        sweep = spec
    args = ["run", None, "-o", out, "--backend", backend, "-q"]
    if force:
        args.append("--force")
    if resume:
        args.append("--resume")
    if threads:
        args += ["--threads", threads]
    with _SweepFile(sweep) as path:
        args[1] = path
        proc = subprocess.Popen([binary()] + [str(a) for a in args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        shown = _Display() if progress else None
        while proc.poll() is None:
            if shown:
                shown.update(out + ".progress")
            time.sleep(0.2)
        stdout, stderr = proc.communicate()
        if shown:
            shown.update(out + ".progress", final=True)
    if proc.returncode != 0:
        _raise(proc.returncode, stderr)
    return open(out)


class _Display:
    """The progress log (OUT.h5.progress) shown as one live line."""

    def __init__(self):
        self.handle = None
        self.last = None
        try:
            from IPython import get_ipython
            shell = get_ipython()
            self.notebook = shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
        except ImportError:
            self.notebook = False

    def update(self, path, final=False):
        if not os.path.exists(path):
            return
        try:
            from dalesim_analysis.progress import read_progress
        except ImportError:
            _add_analysis_path()
            from dalesim_analysis.progress import read_progress
        try:
            line = read_progress(path).summary()
        except Exception:  # a line being written; the next poll reads it whole
            return
        if line == self.last:
            return
        self.last = line
        if self.notebook:
            from IPython.display import display
            if self.handle is None:
                self.handle = display({"text/plain": line}, raw=True, display_id=True)
            else:
                self.handle.update({"text/plain": line}, raw=True)
        else:
            sys.stderr.write("\r" + line.splitlines()[0][:120].ljust(120) + ("\n" if final else ""))
            sys.stderr.flush()


def _add_analysis_path():
    source = _HERE.parent / "analysis"
    if (source / "dalesim_analysis").is_dir() and str(source) not in sys.path:
        sys.path.insert(0, str(source))


def open(out):
    """The run's output as the analysis package's labelled data (dalesim_analysis.load)."""
    try:
        import dalesim_analysis
    except ImportError:
        _add_analysis_path()
        import dalesim_analysis
    return dalesim_analysis.load(str(out))


# ---- trials, simulate, fixed points ---------------------------------------------------------------

def _tmp_h5(prefix):
    fd, path = tempfile.mkstemp(suffix=".h5", prefix=prefix)
    os.close(fd)
    os.unlink(path)
    return path


def _trial_arrays(f, ds):
    """The trial arrays and axes at the root of a trials or simulation file, into `ds`."""
    import numpy as np
    coords = {name: f[name][()] for name in ("trial", "time", "input", "output") if name in f}
    ds.update({"inputs": (("trial", "time", "input"), f["inputs"][()])})
    t = f["targets"]
    ds["targets"] = (("trial", "time", "output") if t.ndim == 3 else ("trial", "time"), t[()])
    if "mask" in f:
        m = f["mask"]
        ds["mask"] = (("trial", "time", "output") if m.ndim == 3 else ("trial", "time"), m[()])
    if "accuracy_label" in f:
        ds["accuracy_label"] = (("trial", "time"), f["accuracy_label"][()].astype(np.int32))
    for name in ("condition", "label"):
        if name in f:
            coords[name] = ("trial", f[name][()])
    if "condition_name" in f:
        coords["condition_name"] = ("trial", f["condition_name"].asstr()[()])
    if "condition_names" in f:
        ds_attrs = ds.setdefault("__attrs__", {})
        ds_attrs["condition_names"] = list(f["condition_names"].asstr()[()])
    return coords


def _attrs(obj):
    out = {}
    for k, v in obj.attrs.items():
        out[k] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)
    return out


def _read_trials(path):
    import h5py
    import xarray as xr
    with h5py.File(path, "r") as f:
        data = {}
        coords = _trial_arrays(f, data)
        extra = data.pop("__attrs__", {})
        return xr.Dataset(data, coords=coords, attrs=dict(_attrs(f), **extra))


def trials(task, n, seed=0, iteration=0, dt=20.0, path=None, **params):
    """n trials of `task` (`dalesim trials`): xarray.Dataset of inputs, targets, mask and the
    condition labels as coordinates on `trial`; the same trials a replica with this `seed` trains
    on at step `iteration` (when n is its task.batch). params: the task's parameters
    (`dalesim tasks`). With `path`, the file is kept there (train on it with the `file` task)."""
    keep = path is not None
    path = str(path) if keep else _tmp_h5("dalesim-trials-")
    args = ["trials", task, "-n", n, "--seed", seed, "--iteration", iteration, "--dt", dt, "-o", path, "--force"]
    for k, v in params.items():
        if isinstance(v, (list, tuple)):
            v = "[" + ",".join(str(x) for x in v) + "]"
        elif isinstance(v, bool):
            v = "true" if v else "false"
        args += ["-p", f"{k}={v}"]
    try:
        _call(args)
        return _read_trials(path)
    finally:
        if not keep and os.path.exists(path):
            os.unlink(path)


def _trials_file(trials_arg, tmpdir):
    """A trials argument as (CLI args, temporary file or None)."""
    if trials_arg is None:
        return ["--task-trials", 64]
    if isinstance(trials_arg, int) and not isinstance(trials_arg, bool):
        return ["--task-trials", trials_arg]
    if isinstance(trials_arg, (str, os.PathLike)):
        return ["--trials", str(trials_arg)]
    path = os.path.join(tmpdir, "trials.h5")
    if hasattr(trials_arg, "data_vars"):  # an xarray.Dataset from dalesim.trials or simulate
        mask = trials_arg["mask"].values if "mask" in trials_arg else None
        write_trials(path, trials_arg["inputs"].values, trials_arg["targets"].values, mask)
    elif isinstance(trials_arg, dict):
        write_trials(path, trials_arg["inputs"], trials_arg["targets"], trials_arg.get("mask"))
    else:
        write_trials(path, *trials_arg)
    return ["--trials", path]


def simulate(out, replica, checkpoint="last", trials=None, iteration=0, noise=False, path=None):
    """Runs trained replicas forward (`dalesim simulate`), by the CPU trainer's own forward pass.

    replica: an id, or a list of ids (a dict of results by id). trials: N (that many trials of the
    replica's own task, batch `iteration`), a trials file, a dataset from dalesim.trials, or numpy
    (inputs, targets[, mask]). Returns an xarray.Dataset: inputs, targets, mask, v and r
    [trial, time, unit], z [trial, time, output], loss, loss_weight, accuracy [trial], with the
    condition labels as coordinates."""
    import h5py
    import xarray as xr
    ids = list(replica) if isinstance(replica, (list, tuple)) else [replica]
    keep = path is not None
    with tempfile.TemporaryDirectory(prefix="dalesim-sim-") as tmp:
        sim_path = str(path) if keep else os.path.join(tmp, "sim.h5")
        args = ["simulate", out, "--checkpoint", checkpoint, "--iteration", iteration, "-o", sim_path, "--force"]
        for i in ids:
            args += ["--replica", i]
        args += _trials_file(trials, tmp)
        if noise:
            args.append("--noise")
        _call(args)
        results = {}
        with h5py.File(sim_path, "r") as f:
            base = {}
            coords = _trial_arrays(f, base)
            extra = base.pop("__attrs__", {})
            for i in ids:
                g = f[f"replica_{i}"]
                data = dict(base)
                for name in ("v", "r"):
                    data[name] = (("trial", "time", "unit"), g[name][()])
                data["z"] = (("trial", "time", "output"), g["z"][()])
                for name in ("loss", "loss_weight", "accuracy", "accuracy_points"):
                    data[name] = (("trial",), g[name][()])
                c = dict(coords, unit=g["unit"][()], unit_sign=("unit", g["unit_sign"][()]))
                attrs = dict(_attrs(f), **_attrs(g), **extra)
                results[i] = xr.Dataset(data, coords=c, attrs=attrs)
    return results if isinstance(replica, (list, tuple)) else results[ids[0]]


def fixed_points(out, replica, checkpoint="last", input=None, trials=None, initial_states=64, init_noise=0.0,
                 tolerance=1e-12, seed=0, path=None):
    """Fixed points of a trained replica under a constant input (`dalesim fixedpoints`), found by
    minimising q = |F|^2 / 2 from states sampled on its trajectories (trials: as for simulate,
    default 16 of its task). Returns an xarray.Dataset: v, r [fixed_point, unit], eigenvalues
    (complex) [fixed_point, eigenvalue], jacobian, q, speed, stable, henrici, count, and the
    trajectories [trial, time, unit] the initial states came from."""
    import h5py
    import numpy as np
    import xarray as xr
    with tempfile.TemporaryDirectory(prefix="dalesim-fp-") as tmp:
        fp_path = str(path) if path is not None else os.path.join(tmp, "fp.h5")
        args = ["fixedpoints", out, "--replica", replica, "--checkpoint", checkpoint, "--initial-states",
                initial_states, "--init-noise", init_noise, "--tolerance", tolerance, "--seed", seed, "-o", fp_path,
                "--force"]
        if input is not None:
            args += ["--input", ",".join(repr(float(x)) for x in np.ravel(input))]
        t = _trials_file(trials if trials is not None else 16, tmp)
        args += ["--from-trials", t[1]] if t[0] == "--trials" else t
        _call(args)
        with h5py.File(fp_path, "r") as f:
            eig = f["eigenvalue_real"][()] + 1j * f["eigenvalue_imag"][()]
            data = {
                "v": (("fixed_point", "unit"), f["v"][()]),
                "r": (("fixed_point", "unit"), f["r"][()]),
                "eigenvalues": (("fixed_point", "eigenvalue"), eig),
                "jacobian": (("fixed_point", "unit", "unit_from"), f["jacobian"][()]),
                "q": (("fixed_point",), f["q"][()]),
                "speed": (("fixed_point",), f["speed"][()]),
                "stable": (("fixed_point",), f["stable"][()].astype(bool)),
                "henrici": (("fixed_point",), f["henrici"][()]),
                "count": (("fixed_point",), f["count"][()].astype(int)),
                "trajectories": (("trial", "time", "unit"), f["trajectories"][()]),
                "input_value": (("input",), f["input_value"][()]),
                "initial_q": (("initial_state",), f["initial_q"][()]),
            }
            coords = {"fixed_point": f["fixed_point"][()], "unit": f["unit"][()], "time": f["time"][()]}
            return xr.Dataset(data, coords=coords, attrs=_attrs(f))
