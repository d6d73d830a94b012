"""Tests of the Python package (dalesim/) against the dalesim program's own results: every call
is compared with the command it stands for, and simulate and fixed_points with independent
numbers (the losses the trainer recorded; F computed here with numpy from the saved weights).

Run by CTest with Debian's interpreter: /usr/bin/python3 tests/python/test_api.py -v
(DALESIM_BINARY names the binary, DALESIM_SOURCE_DIR the source tree; exit code 77: skipped).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.environ.get("DALESIM_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY = os.environ.get("DALESIM_BINARY", os.path.join(SOURCE_DIR, "build", "dalesim"))
os.environ["DALESIM_BINARY"] = BINARY
sys.path.insert(0, SOURCE_DIR)

try:
    import h5py
    import numpy as np
    import xarray  # noqa: F401
except ImportError as e:  # CTest reads exit code 77 as "skipped"
    print(f"SKIP: {sys.executable} cannot import {e.name} (Debian python3-numpy python3-h5py python3-xarray)")
    sys.exit(77)

import dalesim  # noqa: E402

SWEEP = {
    "name": "api-test",
    "model": {"arch": "mix", "n_units": 10, "tau_e": 40.0, "tau_i": 40.0},
    "task": {"name": "perceptual_dm", "batch": 6, "fixation_ms": 40.0, "stimulus_ms": 100.0,
             "decision_ms": 40.0},
    "train": {"lr": 0.02, "n_steps": 4, "log_every": 1, "checkpoint_every": 1},
    "sweep": {"seeds": [3, 8], "grid": {"model.alpha_init": [0.3, 0.7]}},
}


def cli(*args):
    return subprocess.run([BINARY] + [str(a) for a in args], check=True, capture_output=True, text=True)


class Api(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="dalesim_api_")
        cls.out = os.path.join(cls.dir, "run.h5")
        cls.trained = dalesim.run(SWEEP, cls.out, backend="cpu", progress=False)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_run_from_a_dict_text_or_path_equals_the_cli(self):
        toml = dalesim.sweep_text(SWEEP)
        sweep_file = self.path("sweep.toml")
        with open(sweep_file, "w") as f:
            f.write(toml)
        cli("run", sweep_file, "-o", self.path("cli.h5"), "--backend", "cpu", "-q")
        dalesim.run(toml, self.path("text.h5"), backend="cpu", progress=False)
        dalesim.run(sweep_file, self.path("file.h5"), backend="cpu", progress=False)
        with h5py.File(self.path("cli.h5")) as want:
            for name in (self.out, self.path("text.h5"), self.path("file.h5")):
                with h5py.File(name) as got:
                    np.testing.assert_array_equal(got["history/loss"][()], want["history/loss"][()])
        self.assertEqual(len(self.trained.replicas), 4)  # dalesim.open: the analysis package's Run

    def test_validate_names_a_bad_key(self):
        self.assertIn("4 replicas", dalesim.validate(SWEEP).replace("  ", " "))
        bad = dict(SWEEP, train=dict(SWEEP["train"], lr=-1.0))
        with self.assertRaises(dalesim.BadInput) as e:
            dalesim.validate(bad)
        self.assertEqual(e.exception.exit_code, 2)
        self.assertIn("train.lr", str(e.exception))

    def test_trials_equal_the_cli_file(self):
        ds = dalesim.trials("perceptual_dm", 5, seed=3, iteration=2, fixation_ms=40, stimulus_ms=100,
                            decision_ms=40, coherences=[6.4, 51.2])
        cli("trials", "perceptual_dm", "-n", 5, "--seed", 3, "--iteration", 2, "-p", "fixation_ms=40", "-p",
            "stimulus_ms=100", "-p", "decision_ms=40", "-p", "coherences=[6.4,51.2]", "-o", self.path("t.h5"))
        with h5py.File(self.path("t.h5")) as f:
            for name in ("inputs", "targets", "mask", "accuracy_label", "condition", "label"):
                np.testing.assert_array_equal(ds[name].values, f[name][()], err_msg=name)
        self.assertEqual(set(ds["condition_name"].values), {"coherence 6.4", "coherence 51.2"} &
                         set(ds["condition_name"].values))
        self.assertEqual(ds.attrs["condition_names"], ["coherence 6.4", "coherence 51.2"])

    def test_simulate_equals_the_cli_and_the_recorded_losses(self):
        sims = dalesim.simulate(self.out, [0, 2], checkpoint=2, trials=6, iteration=2)
        cli("simulate", self.out, "--replica", 0, "--replica", 2, "--checkpoint", 2, "--task-trials", 6,
            "--iteration", 2, "-o", self.path("sim.h5"))
        with h5py.File(self.path("sim.h5")) as f, h5py.File(self.out) as run:
            ids = list(run["replicas/id"][()])
            step_row = list(run["history/step"][()]).index(2)
            for i in (0, 2):
                for name in ("v", "r", "z", "loss", "accuracy"):
                    np.testing.assert_array_equal(sims[i][name].values, f[f"replica_{i}/{name}"][()], err_msg=name)
                # Batch 2 on the weights of checkpoint 2 is what the trainer scored at step 2.
                s = sims[i]
                mean = float((s["loss"] * s["loss_weight"]).sum() / s["loss_weight"].sum())
                recorded = run["history/loss"][step_row, ids.index(i)]
                self.assertAlmostEqual(mean, recorded, delta=1e-5 * abs(recorded))

    def test_numpy_trials_train_like_the_built_in_task(self):
        ds = dalesim.trials("perceptual_dm", 6, seed=3, fixation_ms=40, stimulus_ms=100, decision_ms=40)
        sweep = {k: v for k, v in SWEEP.items() if k != "sweep"}
        sweep = dict(sweep, seed=3, train=dict(SWEEP["train"], n_steps=1))
        builtin = dalesim.run(sweep, self.path("builtin.h5"), progress=False)
        mine = dalesim.run(sweep, self.path("mine.h5"), progress=False,
                           trials=(ds["inputs"].values, ds["targets"].values, ds["mask"].values))
        with h5py.File(self.path("builtin.h5")) as f, h5py.File(self.path("mine.h5")) as g:
            a, b = f["history/loss"][0, 0], g["history/loss"][0, 0]
            self.assertEqual(g.attrs["sweep_text"].count('name = "file"'), 1)
        self.assertAlmostEqual(a, b, delta=1e-6 * abs(a))
        self.assertEqual(len(mine.replicas), len(builtin.replicas))

    def test_fixed_points_equal_the_cli_and_zero_f_from_the_saved_weights(self):
        fp = dalesim.fixed_points(self.out, 1, input=[1.0, 0.0, 0.0], initial_states=16)
        cli("fixedpoints", self.out, "--replica", 1, "--input", "1,0,0", "--initial-states", 16, "-o",
            self.path("fp.h5"))
        with h5py.File(self.path("fp.h5")) as f:
            np.testing.assert_array_equal(fp["v"].values, f["v"][()])
            np.testing.assert_array_equal(fp["eigenvalues"].values.real, f["eigenvalue_real"][()])
        self.assertGreater(fp.sizes["fixed_point"], 0)
        # F(v) = (-v + W relu(v) + W_in x + b) / tau with the float32 weights of the last checkpoint.
        with h5py.File(self.out) as run:
            ids = list(run["replicas/id"][()])
            k = ids.index(1)
            n = int(run["replicas/n_units"][k])
            group = next(g for g in run["checkpoints/weights"].values() if 1 in list(g["replica"][()]))
            m = list(group["replica"][()]).index(1)
            W, W_in, b = (group[name][-1, m].astype(float) for name in ("W_rec", "W_in", "b"))
            tau = np.where(np.arange(n) < int(run["replicas/n_exc"][k]), 40.0, 40.0)
        for v in fp["v"].values:
            F = (-v + W @ np.maximum(v, 0) + W_in @ np.array([1.0, 0.0, 0.0]) + b) / tau
            self.assertLess(np.linalg.norm(F), 1e-5)
        # The eigenvalues are those of the Jacobian diag(1/tau) (-I + W diag(relu'(v))).
        v = fp["v"].values[0]
        J = (-np.eye(n) + W * (v > 0)[None, :]) / tau[:, None]
        want = np.sort_complex(np.linalg.eigvals(J))
        got = np.sort_complex(fp["eigenvalues"].values[0])
        np.testing.assert_allclose(got, want, atol=1e-6)

    def test_bad_input_is_bad_input_and_writes_nothing(self):
        target = self.path("never.h5")
        for call in (lambda: dalesim.simulate(self.out, 99, trials=2, path=target),
                     lambda: dalesim.simulate(self.out, 0, checkpoint=99, trials=2, path=target),
                     lambda: dalesim.simulate(self.out, 0, trials=(np.zeros((2, 5, 7)), np.zeros((2, 5, 3))),
                                              path=target),
                     lambda: dalesim.fixed_points(self.out, 0, input=[1.0, 2.0], path=target)):
            with self.assertRaises(dalesim.BadInput) as e:
                call()
            self.assertEqual(e.exception.exit_code, 2)
            self.assertFalse(os.path.exists(target))


class Install(unittest.TestCase):
    """pip install . (no build isolation: no index is reachable) into a fresh environment that sees
    numpy and h5py, then the package works from another directory."""

    def test_pip_install_into_a_venv(self):
        work = tempfile.mkdtemp(prefix="dalesim_pip_")
        try:
            env_dir = os.path.join(work, "env")
            made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", env_dir],
                                  capture_output=True, text=True)
            if made.returncode != 0:
                self.skipTest("python3 -m venv is not available (Debian python3-venv): " + made.stderr[-200:])
            python = os.path.join(env_dir, "bin", "python")
            # A copy of what pyproject.toml packages, so that the build leaves the source tree alone.
            tree = os.path.join(work, "src")
            os.makedirs(os.path.join(tree, "analysis"))
            for name in ("pyproject.toml", "README.md"):
                shutil.copy(os.path.join(SOURCE_DIR, name), tree)
            shutil.copytree(os.path.join(SOURCE_DIR, "dalesim"), os.path.join(tree, "dalesim"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copytree(os.path.join(SOURCE_DIR, "analysis", "dalesim_analysis"),
                            os.path.join(tree, "analysis", "dalesim_analysis"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            pip = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                                  "-q", tree], capture_output=True, text=True, cwd=work)
            self.assertEqual(pip.returncode, 0, pip.stdout + pip.stderr)
            code = ("import dalesim, dalesim_analysis, sys; assert 'site-packages' in dalesim.__file__, dalesim.__file__; "
                    "print(dalesim.validate(sys.argv[1]))")
            sweep = os.path.join(work, "s.toml")
            with open(sweep, "w") as f:
                f.write(dalesim.sweep_text(SWEEP))
            got = subprocess.run([python, "-c", code, sweep], capture_output=True, text=True, cwd=work,
                                 env=dict(os.environ, DALESIM_BINARY=BINARY, PYTHONPATH=""))
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertIn("replicas", got.stdout)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
