"""The progress log beside a running output (OUT.h5.progress): one JSON object per line, written by
the driver (src/train/progress.cpp) and readable without opening the HDF5 file."""
import json
import os
import time


class Progress:
    """What the progress log says: steps done, rate, ETA, whether the run ended."""

    def __init__(self):
        self.path = None
        self.n_steps = None
        self.n_replicas = None
        self.step = None        # last logged step, 0-based
        self.done = None        # training steps done (the log's steps_done: last step + 1, or the end's count)
        self.elapsed_s = None
        self.last_gap_s = None  # seconds between the last two step lines
        self.tasks = []
        self.loss_by_task = {}  # mean loss per task on the last logged step
        self.eta_s = None
        self.mean_loss = None
        self.n_diverged = 0
        self.ended = False
        self.end_status = None
        self.updated_s_ago = None  # seconds since the log was last written
        self.bad_lines = 0

    @property
    def steps_done(self):
        if self.done is not None:
            return self.done
        return 0 if self.step is None else self.step + 1

    @property
    def stalled(self):
        """No line for ten of the run's own gaps between step lines (at least 2 s) and no end line:
        the run has probably stopped (killed or crashed)."""
        if self.ended or self.updated_s_ago is None:
            return False
        return self.updated_s_ago > max(2.0, 10 * (self.last_gap_s or 0.2))

    @property
    def fraction(self):
        if self.ended and self.end_status == "complete":
            return 1.0
        return self.steps_done / self.n_steps if self.n_steps else 0.0

    @property
    def rate(self):
        """Training steps per second (every replica advances together)."""
        return self.steps_done / self.elapsed_s if self.elapsed_s else None

    def summary(self):
        """One or two lines for people."""
        if self.n_steps is None:
            return "progress log has no start line yet"
        head = f"step {self.steps_done}/{self.n_steps} ({100 * self.fraction:.1f}%), {self.n_replicas} replicas"
        if self.n_diverged:
            head += f", {self.n_diverged} diverged"
        if self.ended:
            return f"{self.end_status} after {self.elapsed_s or 0:.1f} s; {head}"
        if self.stalled:
            return (f"no progress for {format_seconds(self.updated_s_ago)}: {head}; the run may have stopped "
                    "(killed or crashed)")
        parts = [head]
        if self.rate:
            parts.append(f"{self.rate:.1f} steps/s ({self.rate * (self.n_replicas or 0):.0f} replica-steps/s)")
        if self.eta_s is not None:
            parts.append(f"ETA {format_seconds(self.eta_s)}")
        if len(self.loss_by_task) > 1:
            parts.append("mean loss by task: " + ", ".join(f"{t} {v:.4g}" for t, v in self.loss_by_task.items()
                                                          if v is not None))
        return "running: " + ", ".join(parts)


def format_seconds(s):
    s = float(s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def read_progress(path):
    """Parses a progress log; None when there is none. Unparseable lines (a line being written) are
    counted in bad_lines and skipped."""
    if not os.path.exists(path):
        return None
    p = Progress()
    p.path = path
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                p.bad_lines += 1
                continue
            kind = event.get("event")
            if kind == "start":
                p.n_steps = event.get("n_steps")
                p.n_replicas = event.get("n_replicas")
                p.done = event.get("first_step", p.done)
                p.last_gap_s = None
            elif kind == "tasks":
                p.tasks = str(event.get("tasks", "")).split()
            elif kind == "step":
                p.step = event.get("step")
                p.done = event.get("steps_done", (p.step or 0) + 1)
                p.n_steps = event.get("n_steps", p.n_steps)
                if p.elapsed_s is not None and event.get("elapsed_s") is not None:
                    p.last_gap_s = event["elapsed_s"] - p.elapsed_s
                p.loss_by_task = {t: event.get(f"mean_loss.{t}") for t in p.tasks}
                p.elapsed_s = event.get("elapsed_s")
                p.eta_s = event.get("eta_s")
                p.mean_loss = event.get("mean_loss")
                p.n_diverged = event.get("n_diverged", 0)
            elif kind == "end":
                p.ended = True
                p.end_status = event.get("status")
                p.elapsed_s = event.get("elapsed_s", p.elapsed_s)
                p.done = event.get("steps_done", p.done)
    p.updated_s_ago = max(0.0, time.time() - os.path.getmtime(path))
    return p
