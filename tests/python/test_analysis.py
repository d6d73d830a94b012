"""Tests of the analysis package (analysis/dalesim_analysis) on outputs of the dalesim binary:
complete, partial (rows missing, a metric missing, a write in progress) and killed runs.

Run by CTest with Debian's interpreter: /usr/bin/python3 tests/python/test_analysis.py -v
(DALESIM_BINARY names the binary, DALESIM_SOURCE_DIR the source tree; exit code 77: skipped).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get("DALESIM_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY = os.environ.get("DALESIM_BINARY", os.path.join(SOURCE_DIR, "build", "dalesim"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "analysis"))

try:
    import h5py
    import numpy as np
    import pandas  # noqa: F401
    import xarray  # noqa: F401
    from matplotlib.figure import Figure
except ImportError as e:  # CTest reads exit code 77 as "skipped"
    print(f"SKIP: {sys.executable} cannot import {e.name} (Debian packages python3-numpy python3-h5py "
          "python3-matplotlib python3-pandas python3-xarray; .ci/install-deps installs them)")
    sys.exit(77)

import dalesim_analysis as da  # noqa: E402

SWEEP = """
name = "analysis-test"
[model]
arch = "mix"
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
n_steps = {n_steps}
log_every = 3
checkpoint_every = {checkpoint_every}
[sweep]
seeds = 3
[sweep.grid]
"model.alpha_init" = [0.3, 0.7]
"model.e_fraction" = [0.5, 0.75]
"""


# Zipped axes: lr and rho vary together (3 values), crossed with alpha_init.
ZIP_SWEEP = """
name = "zip-test"
[model]
arch = "mix"
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
n_steps = 7
log_every = 3
checkpoint_every = 5
[sweep]
seeds = 2
[[sweep.zip]]
"train.lr" = [0.001, 0.01, 0.03]
"model.rho" = [0.8, 1.0, 1.2]
[sweep.grid]
"model.alpha_init" = [0.3, 0.7]
"""

# The task swept: a task without conditions and one with, and an arch without E/I types.
TASKS_SWEEP = """
name = "tasks-test"
[model]
n_units = 8
[task]
batch = 8
[train]
n_steps = 7
log_every = 3
checkpoint_every = 5
[sweep]
seeds = 2
[sweep.grid]
"task.name" = ["adding", "go_nogo"]
"model.arch" = ["mix", "free"]
"""


def run_sweep(directory, name, n_steps=7, checkpoint_every=5, text=None):
    sweep = os.path.join(directory, name + ".toml")
    with open(sweep, "w") as f:
        f.write(text or SWEEP.format(n_steps=n_steps, checkpoint_every=checkpoint_every))
    out = os.path.join(directory, name + ".h5")
    subprocess.run([BINARY, "run", sweep, "-o", out, "-q"], check=True, capture_output=True, timeout=120)
    return out


class AnalysisTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="dalesim_analysis_")
        cls.path = run_sweep(cls.dir, "complete")
        cls.loaded = da.load(cls.path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def copy(self, name):
        p = os.path.join(self.dir, name + ".h5")
        shutil.copy(self.path, p)
        return p

    # ---- loading ---------------------------------------------------------------------------------
    def test_load_labels_replicas_with_the_swept_axes(self):
        run = self.loaded
        self.assertEqual(run.status, "complete")
        self.assertEqual(run.n_replicas, 12)
        self.assertEqual(run.axes, ["alpha_init", "e_fraction"])
        self.assertEqual(run.n_steps_planned, 7)
        self.assertEqual(run.problems, [])
        self.assertEqual(dict(run.history.sizes), {"step": 3, "replica": 12})
        self.assertEqual(run.history["step"].values.tolist(), [0, 3, 6])
        self.assertEqual(run.checkpoints["step"].values.tolist(), [0, 5, 7])
        self.assertIn("alpha_init", run.history.coords)
        with h5py.File(self.path, "r") as f:
            np.testing.assert_array_equal(run.history["loss"].values, f["history/loss"][()])
            np.testing.assert_array_equal(run.replicas["alpha_init"].values, f["replicas/alpha_init"][()])
            self.assertEqual(run.replicas.loc[4, "arch"], f["replicas/arch"].asstr()[4])

    def test_tidy_tables_have_one_row_per_step_and_replica(self):
        table = self.loaded.history_table(["loss", "alpha"])
        self.assertEqual(len(table), 3 * 12)
        self.assertEqual(list(table.columns), ["step", "replica", "loss", "alpha", "alpha_init", "e_fraction", "seed"])
        row = table[(table.step == 6) & (table.replica == 5)].iloc[0]
        self.assertEqual(row["loss"], self.loaded.history["loss"].values[2, 5])
        self.assertEqual(row["alpha_init"], self.loaded.replicas.loc[5, "alpha_init"])
        self.assertEqual(len(self.loaded.checkpoint_table(["svd_entropy"])), 3 * 12)

    def test_final_and_condition_summaries(self):
        final = self.loaded.final("alpha")
        np.testing.assert_array_equal(final.values, self.loaded.history["alpha"].values[-1])
        summary = da.condition_final(self.loaded, "alpha")
        self.assertEqual(len(summary), 4)
        self.assertEqual(summary["n"].tolist(), [3, 3, 3, 3])
        first = summary.iloc[0]
        ids = self.loaded.replicas.index[(self.loaded.replicas.alpha_init == first.alpha_init)
                                      & (self.loaded.replicas.e_fraction == first.e_fraction)]
        self.assertAlmostEqual(first["mean"], final.loc[ids].mean(), places=12)
        curves = da.condition_curves(self.loaded, "loss", by=["alpha_init"])
        self.assertEqual(len(curves), 2 * 3)
        self.assertEqual(curves["n"].tolist(), [6] * 6)

    def test_summarize_range_below_five_bootstrap_above_clipped(self):
        import pandas as pd
        df = pd.DataFrame({"g": ["a", "a", "a", "b", "b"], "v": [1.0, 2.0, 4.0, 5.0, np.nan]})
        s = da.summarize(df, ["g"], "v").set_index("g")
        self.assertAlmostEqual(s.loc["a", "mean"], 7 / 3, places=12)
        self.assertEqual((s.loc["a", "lo"], s.loc["a", "hi"], s.loc["a", "interval"]), (1.0, 4.0, "range"))
        self.assertEqual((s.loc["b", "n"], s.loc["b", "lo"], s.loc["b", "hi"]), (1, 5.0, 5.0))
        # From 5 values on: a bootstrap interval of the mean, close to the normal one for many values.
        rng = np.random.default_rng(1)
        v = rng.normal(3.0, 2.0, 400)
        mean, lo, hi, kind = da.interval(v)
        self.assertEqual(kind, "bootstrap")
        half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
        self.assertAlmostEqual((hi - lo) / 2, half, delta=0.1 * half)
        self.assertAlmostEqual((hi + lo) / 2, mean, delta=0.1 * half)
        # Clipped to the quantity's range, in the summaries as in the figures.
        near_one = np.array([1.0, 1.0, 1.0, 0.2, 1.0, 1.0])
        _, lo, hi, _ = da.interval(near_one, da.stats.bounds_of("alpha"))
        self.assertLessEqual(hi, 1.0)
        self.assertGreaterEqual(lo, 0.0)
        self.assertEqual(da.stats.bounds_of("eval_accuracy"), (0.0, 1.0))
        self.assertEqual(da.stats.bounds_of("validation_loss")[0], 0.0)

    def test_sign_test_is_the_exact_binomial(self):
        self.assertAlmostEqual(da.stats.sign_test(5, 0), 2 / 32, places=15)
        self.assertAlmostEqual(da.stats.sign_test(1, 4), 2 * 6 / 32, places=15)
        self.assertEqual(da.stats.sign_test(2, 2), 1.0)
        self.assertEqual(da.stats.sign_test(0, 0), 1.0)

    def test_weights_by_replica(self):
        first, last = self.loaded.read_weights("W_rec", 0), self.loaded.read_weights("W_rec", -1)
        self.assertEqual(sorted(first), list(range(12)))
        self.assertEqual(first[3].shape, (8, 8))
        self.assertFalse(np.array_equal(first[3], last[3]))
        with h5py.File(self.path, "r") as f:
            np.testing.assert_array_equal(last[3], f["checkpoints/weights/n8_i2_o1/W_rec"][-1, 3])

    def test_foreign_and_missing_files(self):
        with self.assertRaises(FileNotFoundError):
            da.load(os.path.join(self.dir, "none.h5"))
        p = os.path.join(self.dir, "foreign.h5")
        with h5py.File(p, "w") as f:
            f["x"] = np.arange(3)
        with self.assertRaisesRegex(ValueError, "not a dalesim output file"):
            da.load(p)

    # ---- figures ---------------------------------------------------------------------------------
    def test_every_figure_draws_a_complete_file(self):
        for title, fn in da.figures.ALL:
            with self.subTest(figure=title):
                fig = fn(self.loaded)
                self.assertIsInstance(fig, Figure)
                fig.savefig(os.path.join(self.dir, title.replace(" ", "_") + ".png"))
                if title.endswith("accuracy"):  # the adding task has no accuracy
                    self.assertIn("accuracy not recorded", fig.missing)
                else:
                    self.assertIsNone(fig.missing, fig.notes)

    def test_figures_are_readable_at_a_glance(self):
        import base64
        import re
        import struct
        html = da.render_report(self.path)
        pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
        self.assertEqual(len(pngs), len(da.figures.ALL))
        for data in pngs:  # the pHYs chunk: pixels per metre, 120 dpi = 4724
            raw = base64.b64decode(data)
            at = raw.find(b"pHYs")
            self.assertGreater(at, 0)
            ppm = struct.unpack(">I", raw[at + 4:at + 8])[0]
            self.assertGreaterEqual(ppm * 0.0254, 119.5)
        # A missing figure's sentence appears once in its caption, not twice.
        self.assertEqual(html.count("eval_accuracy not recorded in this file"), 1)
        # Legends sit outside the data (right of the panel); no offset on tick labels.
        fig = da.figures.alpha_trajectories(self.loaded)
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:
                anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
                self.assertGreaterEqual(anchor.x0, 1.0)
        p = self.copy("flat")
        with h5py.File(p, "r+") as f:  # a change only in the fifth decimal around 1: "1e-5 + 1" by default
            w = f["checkpoints/rel_weight_change"][()]
            f["checkpoints/rel_weight_change"][...] = 1 + 1e-5 * np.arange(w.size).reshape(w.shape) / w.size
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        fig = da.figures.rich_lazy(da.load(p))
        FigureCanvasAgg(fig).draw()
        for ax in fig.axes[:2]:
            self.assertEqual(ax.yaxis.get_major_formatter().get_offset(), "")

    def test_roles_pick_any_axes_and_reject_unknown_ones(self):
        fig = da.figures.alpha_trajectories(self.loaded, hue="e_fraction", col="alpha_init")
        self.assertEqual(len(fig.axes), 2)
        self.assertEqual(fig.axes[0].get_title(), "alpha_init=0.3")
        fig = da.figures.final_alpha_heatmap(self.loaded, x="e_fraction", y="alpha_init")
        self.assertEqual(fig.axes[0].get_xlabel(), "e_fraction")
        with self.assertRaisesRegex(ValueError, "swept axes are"):
            da.figures.loss_curves(self.loaded, hue="nonsense")

    def test_partial_file_says_what_is_missing(self):
        p = self.copy("partial")
        with h5py.File(p, "r+") as f:
            f.attrs["status"] = "running"
            for name, ds in f["history"].items():
                if ds.ndim == 2 or name == "step":
                    ds.resize(0, axis=0)  # nothing logged yet
            for name, ds in f["checkpoints"].items():
                if isinstance(ds, h5py.Dataset) and (ds.ndim == 2 or name == "step"):
                    ds.resize(1, axis=0)  # only the initial checkpoint
            for ds in f["checkpoints/weights/n8_i2_o1"].values():
                if ds.ndim >= 2:
                    ds.resize(1, axis=0)
        run = da.load(p)
        self.assertEqual(run.status, "running")
        self.assertEqual(run.history.sizes["step"], 0)
        results = {title: fn(run) for title, fn in da.figures.ALL}
        for title in ("alpha by condition", "alpha outcomes", "training loss", "final alpha"):
            self.assertIn("not recorded (yet)", results[title].missing or "", title)
        self.assertIsNone(results["rich vs lazy"].missing)  # the initial checkpoint has a weight change of 0
        self.assertIn("run not complete", " ".join(results["rich vs lazy"].notes))
        self.assertIn("only the initial checkpoint so far", " ".join(results["spectra"].notes))
        self.assertIn("only the initial checkpoint so far", " ".join(results["weight distributions"].notes))
        html = da.render_report(p)
        self.assertIn("status-running", html)
        self.assertEqual(html.count("data:image/png;base64,"), len(da.figures.ALL))

    def test_missing_metric_and_write_in_progress(self):
        p = self.copy("torn")
        with h5py.File(p, "r+") as f:
            del f["history/alpha"]
            f["history/loss"].resize(2, axis=0)  # the writer grew step but not yet loss
        run = da.load(p)
        self.assertEqual(run.history.sizes["step"], 2)
        self.assertTrue(any("unequal length" in problem for problem in run.problems), run.problems)
        self.assertIn("alpha not recorded", da.figures.alpha_trajectories(run).missing)
        self.assertIsNone(da.figures.loss_curves(run).missing)

    def test_killed_run_loads_and_reports(self):
        sweep = os.path.join(self.dir, "long.toml")
        with open(sweep, "w") as f:
            f.write(SWEEP.format(n_steps=1000000, checkpoint_every=200))
        out = os.path.join(self.dir, "killed.h5")
        proc = subprocess.Popen([BINARY, "run", sweep, "-o", out, "-q", "--threads", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while time.time() < deadline:  # until a few checkpoints have been flushed
                p = da.read_progress(out + ".progress")
                if p is not None and p.steps_done > 450:
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        run = da.load(out)
        self.assertEqual(run.status, "running")
        # Everything up to the last flush (checkpoints 0, 200, 400) reads back, unless the kill hit a
        # flush itself: then what cannot be read is named, never raised.
        if not run.problems:
            self.assertGreaterEqual(run.checkpoints.sizes["step"], 3)
            self.assertGreaterEqual(run.history.sizes["step"], 134)
        else:
            self.assertIn("cannot be read", " ".join(run.problems))
        self.assertFalse(run.progress.ended)
        self.assertRegex(run.progress.summary(), "^(running: step|no progress for)")
        # A while after the kill the log is stale for the run's pace: no ETA, "no progress".
        stale = time.time() - 30
        os.utime(out + ".progress", (stale, stale))
        summary = da.read_progress(out + ".progress").summary()
        self.assertIn("no progress for 30 s", summary)
        self.assertNotIn("ETA", summary)
        self.assertIn("no progress for", da.render_report(out))
        for title, fn in da.figures.ALL:
            self.assertIsInstance(fn(run), Figure, title)
        self.assertIn("status-running", da.render_report(out))

    # ---- per-replica truth: a bimodal condition ----------------------------------------------------
    def bimodal_copy(self):
        """The complete file with the final alpha of the (alpha_init 0.3, e_fraction 0.5) replicas set
        to 0.02, 0.97, 0.05: a condition whose replicas split between alpha ~ 0 and alpha ~ 1."""
        p = self.copy("bimodal")
        r = self.loaded.replicas
        ids = r.index[(r.alpha_init == 0.3) & (r.e_fraction == 0.5)].tolist()
        with h5py.File(p, "r+") as f:
            alpha = f["history/alpha"][()]
            alpha[-1, ids] = [0.02, 0.97, 0.05]
            f["history/alpha"][...] = alpha
        return p, ids

    def test_bimodal_condition_is_flagged_and_counted(self):
        p, ids = self.bimodal_copy()
        run = da.load(p)
        moves = da.alpha_moves(run).set_index(["alpha_init", "e_fraction"])
        self.assertEqual(moves["bimodal"].tolist().count(True), 1)
        m = moves.loc[(0.3, 0.5)]
        self.assertTrue(m["bimodal"])
        self.assertEqual((m["n"], m["n_low"], m["n_high"]), (3, 2, 1))
        initial = run.history["alpha"].values[0, ids]
        self.assertEqual(m["n_up"], int(((np.array([0.02, 0.97, 0.05]) - initial) > 1e-3).sum()))
        self.assertAlmostEqual(m["sign_test_p"], da.stats.sign_test(int(m["n_up"]), int(m["n_down"])))
        # Every interval stays within [0, 1]; below 5 replicas it is their range.
        final = da.condition_final(run, "alpha").set_index(["alpha_init", "e_fraction"])
        self.assertTrue(((final["lo"] >= 0) & (final["hi"] <= 1)).all())
        self.assertEqual((final.loc[(0.3, 0.5), "lo"], final.loc[(0.3, 0.5), "hi"]), (0.02, 0.97))
        curves = da.condition_curves(run, "alpha")
        self.assertTrue(((curves["lo"] >= 0) & (curves["hi"] <= 1)).all())

    def test_bimodal_figures_show_every_replica_and_the_flag(self):
        from matplotlib.collections import PolyCollection
        p, ids = self.bimodal_copy()
        run = da.load(p)
        fig = da.figures.alpha_trajectories(run, hue="alpha_init", col="e_fraction")
        for ax in fig.axes:
            if not ax.get_title():
                continue
            thin = [l for l in ax.get_lines() if l.get_linewidth() == da.figures.REPLICA_LW and len(l.get_xdata())]
            self.assertEqual(len(thin), 6, ax.get_title())  # 2 alpha_init x 3 seeds in each e_fraction panel
            self.assertIsNotNone(ax.get_legend(), ax.get_title())
            for band in (c for c in ax.collections if isinstance(c, PolyCollection)):
                y = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
                self.assertTrue(((y >= 0) & (y <= 1)).all())
        outcome = da.figures.alpha_outcomes(run)
        self.assertEqual(int(outcome.moves["bimodal"].sum()), 1)
        self.assertIn("bimodal outcome in 1 of 4 conditions", " ".join(outcome.notes))
        heat = da.figures.final_alpha_heatmap(run)
        texts = [t.get_text() for t in heat.axes[0].texts]
        self.assertEqual(sum("bimodal" in t for t in texts), 1)
        html = da.render_report(p)
        self.assertIn('class="bimodal"', html)
        self.assertIn("Bimodal outcome in 1 of 4 conditions", html)
        self.assertEqual(html.count("data:image/png;base64,"), len(da.figures.ALL))

    def test_beat_baseline_filter(self):
        final, base = self.loaded.final("loss"), self.loaded.replicas["baseline_loss"]
        margin = 0.2
        expected = sorted(int(r) for r in final.index if final[r] <= (1 - margin) * base[r])
        self.assertEqual(sorted(int(r) for r in da.beats_baseline(self.loaded, margin)), expected)
        sub = self.loaded.subset(expected, why="test selection")
        self.assertEqual(sub.n_replicas, len(expected))
        self.assertEqual(sub.history.sizes["replica"], len(expected))
        html = da.render_report(self.path, beat_baseline=margin)
        self.assertIn(f"only the {len(expected)} of 12 replicas", html)

    # ---- every sweep shape ---------------------------------------------------------------------------
    def test_zipped_axes_are_one_factor(self):
        run = da.load(run_sweep(self.dir, "zipped", text=ZIP_SWEEP))
        self.assertEqual(sorted(run.axes), ["alpha_init", "lr", "model_rho"])
        self.assertIn("lr & model_rho", run.factors)
        self.assertEqual(len(run.factors), 2)
        self.assertEqual(run.factor_levels["lr & model_rho"],
                         ["lr=0.001, model_rho=0.8", "lr=0.01, model_rho=1", "lr=0.03, model_rho=1.2"])
        self.assertEqual(len(da.condition_final(run, "alpha")), 6)  # 3 zipped values x 2 alpha_init, not 9 x 2
        fig = da.figures.alpha_trajectories(run, hue="lr & model_rho")
        means = [l for ax in fig.axes for l in ax.get_lines() if l.get_linewidth() == 2.0]
        self.assertEqual(len(means), 6)
        by_col = da.figures.alpha_trajectories(run, hue="alpha_init", col="lr & model_rho")
        self.assertEqual([ax.get_title() for ax in by_col.axes if ax.get_title()],
                         ["lr=0.001, model_rho=0.8", "lr=0.01, model_rho=1", "lr=0.03, model_rho=1.2"])
        # A figure with one hue pools the zip factor, and says so.
        self.assertIn("pooled over seeds, lr & model_rho", da.figures.spectra(run, hue="alpha_init")._suptitle.get_text())
        heat = da.figures.final_alpha_heatmap(run)
        self.assertEqual(sorted([heat.axes[0].get_xlabel(), heat.axes[0].get_ylabel()]), ["alpha_init", "lr & model_rho"])
        self.assertNotIn("n/a", [t.get_text() for t in heat.axes[0].texts])
        # Crossing the two zipped axes leaves 6 of 9 cells without replicas: they say n/a.
        crossed = da.figures.final_alpha_heatmap(run, x="lr", y="model_rho")
        self.assertEqual([t.get_text() for t in crossed.axes[0].texts].count("n/a"), 6)
        self.assertIn("pooled over seeds, alpha_init", crossed._suptitle.get_text())
        html = da.render_report(run.path)
        self.assertEqual(html.count("data:image/png;base64,"), len(da.figures.ALL))

    def test_swept_task_panels_baselines_ei_and_conditions(self):
        run = da.load(run_sweep(self.dir, "tasks", text=TASKS_SWEEP))
        fig = da.figures.loss_curves(run, "eval_loss", hue="arch", col="task")
        for ax in fig.axes:
            title = ax.get_title()
            if not title.startswith("task="):
                continue
            labels = ax.get_legend_handles_labels()[1]
            task = title.split("=", 1)[1]
            baselines = [l for l in labels if l.startswith("baseline")]
            self.assertEqual(len(baselines), 1, labels)
            self.assertIn(f"({task})", baselines[0])
        weights = da.figures.weight_distributions(run)
        panels = {ax.get_title(): ax.get_legend_handles_labels()[1] for ax in weights.axes if ax.get_title()}
        self.assertTrue(all(l.startswith("all weights") for l in panels["arch=free"]), panels)
        self.assertTrue(any(l.startswith("E,") for l in panels["arch=mix"]), panels)
        table = run.condition_accuracy_table()
        self.assertEqual(set(table["task"]), {"go_nogo"})
        self.assertEqual(set(table["condition"]), {"go", "no-go"})
        self.assertEqual(len(table), 4 * 2)  # 4 go_nogo replicas x 2 conditions
        acc = table["accuracy"].astype(float)
        self.assertTrue(((acc >= 0) & (acc <= 1)).all())
        html = da.render_report(run.path)
        self.assertIn("Evaluation set", html)
        self.assertIn("no-go", html)
        self.assertEqual(html.count("data:image/png;base64,"), len(da.figures.ALL))

    # ---- command line ----------------------------------------------------------------------------
    def test_module_command_line(self):
        env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "analysis"))
        out = os.path.join(self.dir, "cli.html")
        r = subprocess.run([sys.executable, "-m", "dalesim_analysis", "report", self.path, "-o", out], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.getsize(out) > 10000)
        r = subprocess.run([sys.executable, "-m", "dalesim_analysis", "status", self.path], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("complete after", r.stdout)
        self.assertIn("step 7/7 (100.0%), 12 replicas", r.stdout)
        r = subprocess.run([sys.executable, "-m", "dalesim_analysis", "summary", self.path], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("final alpha", r.stdout)
        self.assertIn("final eval_loss", r.stdout)
        self.assertIn("where alpha went", r.stdout)


class StudyTest(unittest.TestCase):
    """The alpha study's analysis (dalesim_analysis.study) on the committed fixtures
    data/test/study_trained.h5 (lr_alpha 0.05 / 0.5, 4 seeds) and study_fixed.h5 (alpha fixed at
    0, 0.5, 1, 2 seeds), against counts and means read here with h5py."""

    TRAINED = os.path.join(SOURCE_DIR, "data", "test", "study_trained.h5")
    FIXED = os.path.join(SOURCE_DIR, "data", "test", "study_fixed.h5")

    @staticmethod
    def last_finite(a):
        out = np.full(a.shape[1], np.nan)
        for r in range(a.shape[1]):
            k = np.flatnonzero(np.isfinite(a[:, r]))
            if k.size:
                out[r] = a[k[-1], r]
        return out

    def test_wilson_interval_closed_forms(self):
        from dalesim_analysis.study import wilson, Z95
        lo, hi = wilson(0, 4)
        self.assertEqual(lo, 0.0)
        self.assertAlmostEqual(hi, Z95 ** 2 / (4 + Z95 ** 2), places=12)  # k = 0: z^2 / (n + z^2)
        lo, hi = wilson(4, 4)
        self.assertAlmostEqual(lo, 4 / (4 + Z95 ** 2), places=12)
        self.assertEqual(hi, 1.0)
        for k in range(9):
            lo, hi = wilson(k, 8)
            self.assertTrue(0 <= lo <= k / 8 <= hi <= 1)
        self.assertEqual(wilson(0, 0), (0.0, 1.0))
        for n in (1, 7, 48, 64, 288):  # the ends exactly, not a rounding hair inside them
            self.assertEqual(wilson(0, n)[0], 0.0)
            self.assertEqual(wilson(n, n)[1], 1.0)

    def test_outcome_fractions_count_each_replica(self):
        from dalesim_analysis.study import outcome_fractions
        with h5py.File(self.TRAINED, "r") as f:
            final = self.last_finite(f["history/alpha"][:])
            lr = f["replicas/lr_alpha"][:]
        table = outcome_fractions(da.load(self.TRAINED), ["lr_alpha"])
        self.assertEqual(sorted(table["lr_alpha"]), sorted(set(lr)))
        for _, row in table.iterrows():
            mine = final[lr == row["lr_alpha"]]
            self.assertEqual(row["n"], len(mine))
            self.assertEqual(row["n_low"], int((mine <= 0.1).sum()))
            self.assertEqual(row["n_high"], int((mine >= 0.9).sum()))
            self.assertEqual(row["n_middle"], len(mine) - row["n_low"] - row["n_high"])
            self.assertEqual(bool(row["bimodal"]), bool((mine <= 0.1).any() and (mine >= 0.9).any()))
            self.assertAlmostEqual(row["median_final_alpha"], float(np.median(mine)), places=12)
            for side in ("low", "high"):
                self.assertTrue(0 <= row[f"frac_{side}_lo"] <= row[f"frac_{side}"] <= row[f"frac_{side}_hi"] <= 1)
        # The fixture was chosen to show it: the fast alpha ends at both ends.
        self.assertTrue(table.set_index("lr_alpha").loc[0.5, "bimodal"])

    def test_early_signal_against_the_recorded_gradient(self):
        from dalesim_analysis.study import early_signal
        with h5py.File(self.TRAINED, "r") as f:
            grad = f["history/alpha_grad"][:5]
            alpha = f["history/alpha"][:]
            lr = f["replicas/lr_alpha"][:]
        change = self.last_finite(alpha) - alpha[0]
        agree = (grad.mean(axis=0) < 0) == (change > 0)
        table = early_signal(da.load(self.TRAINED), ["lr_alpha"])
        for _, row in table.iterrows():
            keep = (lr == row["lr_alpha"]) & (np.abs(change) > 1e-3)
            self.assertEqual(row["n"], int(keep.sum()))
            self.assertEqual(row["n_agree"], int(agree[keep].sum()))

    def test_fixed_alpha_scan_means_and_best(self):
        from dalesim_analysis.study import fixed_alpha_scan
        with h5py.File(self.FIXED, "r") as f:
            loss = self.last_finite(f["checkpoints/eval_loss"][:])
            a0 = f["replicas/alpha_init"][:]
            self.assertTrue((f["replicas/lr_alpha"][:] == 0).all())
            # Alpha never moved: the recorded alpha is the initial one at every step.
            np.testing.assert_allclose(f["history/alpha"][:], np.broadcast_to(a0, f["history/alpha"].shape), atol=1e-7)
        table = fixed_alpha_scan(da.load(self.FIXED), [])
        self.assertEqual(sorted(table["alpha_init"]), [0.0, 0.5, 1.0])
        means = {a: float(loss[a0 == a].mean()) for a in (0.0, 0.5, 1.0)}
        for _, row in table.iterrows():
            self.assertAlmostEqual(row["mean"], means[row["alpha_init"]], places=12)
            self.assertEqual(row["n"], 2)
            self.assertLessEqual(row["lo"], row["mean"])
            self.assertGreaterEqual(row["lo"], 0.0)
        best = table[table["best"]]["alpha_init"].tolist()
        self.assertEqual(best, [min(means, key=means.get)])

    def read_final(self, path, *metrics):
        """Per replica, from the file with h5py: seed, alpha_init, lr_alpha, baseline_loss, the
        first and last finite alpha, and the last finite value of each checkpoint metric."""
        with h5py.File(path, "r") as f:
            out = {k: f[f"replicas/{k}"][:] for k in ("seed", "alpha_init", "lr_alpha", "baseline_loss")}
            alpha = f["history/alpha"][:]
            out["alpha0"], out["alpha"] = alpha[0], self.last_finite(alpha)
            out["alpha_steps"], out["alpha_all"] = f["history/step"][:], alpha
            for m in metrics:
                out[m] = self.last_finite(f[f"checkpoints/{m}"][:])
        return out

    def test_compact_outcomes_count_ends_and_learners(self):
        from dalesim_analysis.study import compact_outcomes
        d = self.read_final(self.TRAINED, "eval_loss")
        table = compact_outcomes(da.load(self.TRAINED), ["lr_alpha"])
        self.assertEqual(len(table), len(set(d["lr_alpha"])))
        for _, row in table.iterrows():
            keep = d["lr_alpha"] == row["lr_alpha"]
            a = d["alpha"][keep]
            self.assertEqual(row["n"], keep.sum())
            self.assertEqual(row["n_low"], int((a <= 0.1).sum()))
            self.assertEqual(row["n_high"], int((a >= 0.9).sum()))
            self.assertEqual(row["n_low"] + row["n_middle"] + row["n_high"], row["n"])
            self.assertAlmostEqual(row["median_eval_loss"], float(np.median(d["eval_loss"][keep])), places=12)
            self.assertEqual(row["n_learned"], int((d["eval_loss"][keep] <= 0.9 * d["baseline_loss"][keep]).sum()))
            self.assertTrue(0 <= row["frac_high_lo"] <= row["frac_high"] <= row["frac_high_hi"] <= 1)

    def test_paired_fixed_alpha_pairs_seeds(self):
        from dalesim_analysis.study import paired_fixed_alpha
        d = self.read_final(self.FIXED, "eval_loss")
        table = paired_fixed_alpha(da.load(self.FIXED), [])
        self.assertEqual(len(table), 1)
        row = table.iloc[0]
        diffs = []
        for seed in sorted(set(d["seed"])):
            dale = d["eval_loss"][(d["seed"] == seed) & (d["alpha_init"] == 1.0)]
            free = d["eval_loss"][(d["seed"] == seed) & (d["alpha_init"] == 0.0)]
            self.assertEqual((len(dale), len(free)), (1, 1))
            diffs.append(dale[0] - free[0])
        diffs = np.array(diffs)
        self.assertEqual(row["n_pairs"], len(diffs))
        self.assertEqual(row["n_dale_better"], int((diffs < 0).sum()))
        self.assertEqual(row["n_dale_worse"], int((diffs > 0).sum()))
        self.assertAlmostEqual(row["median_eval_loss_dale_minus_free"], float(np.median(diffs)), places=12)
        # Two pairs all one way: the exact two-sided sign test gives 2 * (1/2)^2 = 0.5.
        if row["n_dale_better"] + row["n_dale_worse"] == 2 and 0 in (row["n_dale_better"], row["n_dale_worse"]):
            self.assertAlmostEqual(row["sign_test_p"], 0.5, places=12)

    def test_decided_by_follows_each_replica(self):
        from dalesim_analysis.study import decided_by
        d = self.read_final(self.TRAINED)
        table = decided_by(da.load(self.TRAINED), ["lr_alpha"], steps=(10, 30))
        ends = (d["alpha"] <= 0.1) | (d["alpha"] >= 0.9)
        self.assertTrue(ends.any(), "the fixture has replicas at an end")
        for _, row in table.iterrows():
            keep = ends & (d["lr_alpha"] == row["lr_alpha"])
            at = np.flatnonzero(d["alpha_steps"] <= row["step"])[-1]
            now = d["alpha_all"][at][keep]
            toward = np.sign(now - d["alpha0"][keep]) == np.sign(d["alpha"][keep] - d["alpha0"][keep])
            self.assertEqual(row["n"], keep.sum())
            self.assertEqual(row["n_toward_end"], int(toward.sum()))

    def test_winners_activity_medians_per_outcome(self):
        from dalesim_analysis.study import winners_activity
        d = self.read_final(self.TRAINED, "eval_loss", "act_corr_e")
        table = winners_activity(da.load(self.TRAINED), ["lr_alpha"], ("eval_loss", "act_corr_e"))
        outcome = np.where(d["alpha"] <= 0.1, "low", np.where(d["alpha"] >= 0.9, "high", "middle"))
        self.assertEqual(int(table["n"].sum()), len(d["alpha"]))
        for _, row in table.iterrows():
            keep = (d["lr_alpha"] == row["lr_alpha"]) & (outcome == row["outcome"])
            self.assertEqual(row["n"], keep.sum())
            self.assertAlmostEqual(row["median_act_corr_e"], float(np.nanmedian(d["act_corr_e"][keep])), places=12)

    def test_early_norm_ratio_per_outcome(self):
        from dalesim_analysis.study import early_norm_ratio
        d = self.read_final(self.TRAINED)
        with h5py.File(self.TRAINED, "r") as f:
            ratio = (f["history/grad_norm_dale"][:5] / f["history/grad_norm_free"][:5]).mean(axis=0)
        outcome = np.where(d["alpha"] <= 0.1, "low", np.where(d["alpha"] >= 0.9, "high", "middle"))
        table = early_norm_ratio(da.load(self.TRAINED), ["lr_alpha"])
        self.assertEqual(int(table["n"].sum()), len(ratio))
        for _, row in table.iterrows():
            keep = (d["lr_alpha"] == row["lr_alpha"]) & (outcome == row["outcome"])
            self.assertAlmostEqual(row["median_early_norm_ratio"], float(np.median(ratio[keep])), places=12)

    def test_winners_are_the_best_replica_at_each_end(self):
        from dalesim_analysis.study import ends_of, pick_winners
        d = self.read_final(self.TRAINED, "eval_loss")
        for lr in sorted(set(d["lr_alpha"])):
            winners = pick_winners(da.load(self.TRAINED), {"lr_alpha": lr})
            ends = ends_of(da.load(self.TRAINED), {"lr_alpha": lr})
            self.assertEqual(ends["high"], [int(r) for r in np.flatnonzero((d["alpha"] >= 0.9) & (d["lr_alpha"] == lr))])
            self.assertEqual(ends["low"], [int(r) for r in np.flatnonzero((d["alpha"] <= 0.1) & (d["lr_alpha"] == lr))])
            for side, keep in (("high", d["alpha"] >= 0.9), ("low", d["alpha"] <= 0.1)):
                keep = keep & (d["lr_alpha"] == lr)
                if not keep.any():
                    self.assertNotIn(side, winners)
                    continue
                ids = np.flatnonzero(keep)
                self.assertEqual(winners[side], int(ids[np.argmin(d["eval_loss"][ids])]))

    def test_study_fixedpoints_command_summarises_each_file(self):
        if not os.path.exists(BINARY):
            self.skipTest(f"no binary {BINARY}")
        out = tempfile.mkdtemp()
        try:
            env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "analysis"))
            p = subprocess.run([sys.executable, "-m", "dalesim_analysis", "study-fixedpoints", self.TRAINED,
                                "--where", "lr_alpha=0.5", "--every", "--binary", BINARY, "-o", out],
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            files = sorted(f for f in os.listdir(out) if f.startswith("fp_"))
            self.assertTrue(files)
            from dalesim_analysis.study import fixed_point_summary
            for name in files:
                with h5py.File(os.path.join(out, name), "r") as f:
                    stable = f["stable"][()].astype(bool)
                    real = f["eigenvalue_real"][()]
                s = fixed_point_summary(os.path.join(out, name))
                self.assertEqual(s["n_fixed_points"], len(stable))
                self.assertEqual(s["n_stable"], int(stable.sum()))
                if stable.any():
                    self.assertLess(s["slowest_stable_eigenvalue"], 0.0)  # stable: every real part < 0
                    self.assertEqual(s["slowest_stable_eigenvalue"], float(real[stable].max()))
            with open(os.path.join(out, "fixed_points.md")) as f:
                text = f.read()
            self.assertIn("lr_alpha=0.5", text)
            self.assertIn("n_with_a_stable_point", text)  # --every: the medians per outcome
        finally:
            shutil.rmtree(out)

    def test_study_command_writes_tables_and_figures(self):
        out = tempfile.mkdtemp()
        try:
            env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "analysis"))
            p = subprocess.run([sys.executable, "-m", "dalesim_analysis", "study", self.TRAINED, self.FIXED, "-o", out],
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(out, "study.md")) as f:
                text = f.read()
            self.assertIn("## study_trained", text)
            self.assertIn("## study_fixed", text)
            self.assertIn("Paired by seed", text)
            self.assertIn("How early was it decided?", text)
            for png in ("study_trained_outcomes.png", "study_trained_alpha_trajectories.png", "study_trained_end_fractions.png",
                        "study_fixed_fixed_alpha.png", "study_fixed_fixed_alpha_panels.png"):
                with open(os.path.join(out, png), "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            bad = subprocess.run([sys.executable, "-m", "dalesim_analysis", "study", os.path.join(out, "none.h5"),
                                  "-o", out], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(bad.returncode, 2)
            self.assertIn("none.h5", bad.stderr)
        finally:
            shutil.rmtree(out)


if __name__ == "__main__":
    unittest.main()
