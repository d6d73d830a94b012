"""The one-page HTML report of an output file: run status and timing, the figures (embedded PNG),
a replica table and the sweep file. Self-contained: no external files, fonts or scripts."""
import base64
import html
import io
import os
import time

import numpy as np

from . import figures
from .loading import load
from .progress import format_seconds
from .stats import HIGH_ALPHA, INTERVAL_TEXT, LOW_ALPHA, alpha_moves, beats_baseline

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f2f2f2; } td.text { text-align: left; }
table.facts td:first-child { font-weight: bold; text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.note { color: #9a2b2b; } tr.bimodal td { background: #fbe3e0; font-weight: bold; } .status-running { color: #b26b00; } .status-complete { color: #1d7a32; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""

# Marks each figure drawn once the page has decoded it: a headless browser (the report test) can
# read the count from <body data-figures-drawn>, a person sees a warning if an image is broken.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('figure img');
  var drawn = 0;
  imgs.forEach(function (img) { if (img.complete && img.naturalWidth > 0) drawn++; });
  document.body.setAttribute('data-figures-drawn', String(drawn));
  document.body.setAttribute('data-figures-total', String(imgs.length));
  if (drawn < imgs.length) {
    var p = document.createElement('p');
    p.className = 'note';
    p.textContent = (imgs.length - drawn) + ' figure(s) could not be displayed.';
    document.body.insertBefore(p, document.body.firstChild);
  }
});
"""


def _e(text):
    return html.escape(str(text), quote=True)


def _png(fig, dpi=120):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _number(value):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _facts(run):
    a = run.attrs
    rows = [
        ("status", f'<span class="status-{_e(run.status)}">{_e(run.status)}</span>'),
        ("replicas", _e(run.n_replicas)),
        ("swept axes", _e(", ".join(run.axes) or "none") + " (and seed)"),
        ("training steps done", _e(_steps_done(run))),
        ("history", _e(f"{run.history.sizes.get('step', 0)} logged rows"
                       + (f", steps {int(run.history['step'].values[0])} to {int(run.history['step'].values[-1])}"
                          if run.history.sizes.get('step') else ""))),
        ("checkpoints", _e(f"{run.checkpoints.sizes.get('step', 0)}"
                           + (f", last at step {int(run.checkpoints['step'].values[-1])}"
                              if run.checkpoints.sizes.get('step') else ""))),
        ("backend", _e(f"{a.get('backend', '?')} ({a.get('device', '?')})")),
        ("engine", _e(f"dalesim {a.get('dalesim_version', '?')}, git {a.get('git_hash', '?')}")),
        ("created", _e(a.get("created", "?"))),
        ("command line", f"<code>{_e(a.get('command_line', ''))}</code>"),
    ]
    p = run.progress
    if p is not None:
        rows.append(("progress log", _e(p.summary()).replace("\n", "<br>")))
        if p.elapsed_s:
            timing = f"{format_seconds(p.elapsed_s)} elapsed"
            if p.rate:
                timing += f", {p.rate:.1f} steps/s, {p.rate * (p.n_replicas or 0):.0f} replica-steps/s"
            rows.append(("timing", _e(timing)))
    else:
        rows.append(("progress log", _e(f"none beside the file ({os.path.basename(run.path)}.progress)")))
    body = "".join(f'<tr><td>{k}</td><td class="text">{v}</td></tr>' for k, v in rows)
    return f'<table class="facts">{body}</table>'


def _steps_done(run):
    """Training steps done, by the convention of docs/hdf5-layout.md: a history row at step s is
    measured on the parameters after s updates (its training batch, before update s + 1), a
    checkpoint at step s after s updates; a finished run of n steps has rows up to n - 1 and its
    last checkpoint at n."""
    planned = run.n_steps_planned
    done = None
    if run.checkpoints.sizes.get("step"):
        done = int(run.checkpoints["step"].values[-1])
    if run.progress is not None and run.progress.steps_done:
        done = max(done or 0, run.progress.steps_done)
    if done is None:
        return f"0 of {planned}"
    return f"{done} of {planned}" + (" (finished)" if run.status == "complete" else "")


def _alpha_table(run):
    """Where alpha went per condition: counts up / down, the sign test and the bimodality flag."""
    if not run.has_metric("alpha"):
        return ""
    by = [f for f in run.factors if run.replicas[f].nunique() > 1]
    moves = alpha_moves(run, by=by)
    head = "".join(f"<th>{_e(c)}</th>" for c in [*by, "n", "moved up", "moved down", "unchanged", "sign test p",
                                                  "median change", f"final <= {LOW_ALPHA}",
                                                  f"final >= {HIGH_ALPHA}", "bimodal"])
    rows = []
    for _, m in moves.iterrows():
        cells = [*(m[b] for b in by), m["n"], m["n_up"], m["n_down"], m["n_flat"], f"{m['sign_test_p']:.3g}",
                 f"{m['median_change']:+.3f}", m["n_low"], m["n_high"], "yes" if m["bimodal"] else "no"]
        cls = ' class="bimodal"' if m["bimodal"] else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_e(_number(c))}</td>" for c in cells) + "</tr>")
    n_bimodal = int(moves["bimodal"].sum())
    lead = (f'<p class="note">Bimodal outcome in {n_bimodal} of {len(moves)} conditions: some replicas end with '
            f"alpha in [0, {LOW_ALPHA}] and others in [{HIGH_ALPHA}, 1]; a mean of such a condition describes "
            "no replica.</p>" if n_bimodal else "")
    return (f"{lead}<p>Change of alpha (final &minus; initial) per replica, counted per condition; the sign test "
            "is the two-sided exact binomial test of up against down.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _evaluation_table(run):
    """Accuracy on the evaluation set at the last checkpoint, per task condition (mean and range or
    bootstrap interval over the replicas of each factor level)."""
    from .stats import summarize
    table = run.condition_accuracy_table()
    if table.empty or not np.isfinite(table["accuracy"].astype(float)).any():
        return ""
    by = ["task", "condition", *[f for f in run.factors if f != "task" and run.replicas[f].nunique() > 1]]
    order = {name: k for k, name in enumerate(dict.fromkeys(table["condition"]))}
    s = summarize(table, by, "accuracy")
    s["_order"] = s["condition"].map(order)
    s = s.sort_values(["task", *by[2:], "_order"])
    head = "".join(f"<th>{_e(c)}</th>" for c in [*by, "n", "mean accuracy", "interval", "min", "max"])
    rows = []
    for _, r in s.iterrows():
        cells = [*(r[b] for b in by), r["n"], f"{r['mean']:.3f}", f"[{r['lo']:.3f}, {r['hi']:.3f}] ({r['interval']})",
                 f"{r['min']:.3f}", f"{r['max']:.3f}"]
        rows.append("<tr>" + "".join(f"<td>{_e(_number(c))}</td>" for c in cells) + "</tr>")
    return ("<p>Accuracy per trial condition on each replica's fixed evaluation set at the last checkpoint.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _replica_table(run):
    if run.replicas.empty:
        return '<p class="note">no /replicas table in the file</p>'
    columns = ["id", *run.axes, "seed", "arch", "task", "status", "diverged_step"]
    columns = [c for c in dict.fromkeys(columns) if c in run.replicas]
    finals = {}
    for metric, name in (("eval_loss", "final eval loss"), ("eval_accuracy", "final eval accuracy"),
                         ("loss", "final training loss"), ("alpha", "final alpha")):
        if run.has_metric(metric):
            finals[name] = run.final(metric)
    head = "".join(f"<th>{_e(c)}</th>" for c in [*columns, *finals])
    rows = []
    for rid, r in run.replicas.iterrows():
        cells = []
        for c in columns:
            v = r[c]
            cls = ' class="text"' if isinstance(v, str) else ""
            cells.append(f"<td{cls}>{_e(_number(v))}</td>")
        cells += [f"<td>{_e(_number(s.get(rid)))}</td>" for s in finals.values()]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_report(path, beat_baseline=None):
    """The report of output file `path` as an HTML string. `beat_baseline` (a fraction) keeps only
    the replicas whose final loss is at most (1 - beat_baseline) x their task's baseline loss."""
    started = time.time()
    run = load(path)
    selection = ""
    if beat_baseline is not None:
        keep = beats_baseline(run, beat_baseline)
        why = f"only the {len(keep)} of {run.n_replicas} replicas whose final loss beats the baseline by {beat_baseline:g}"
        selection = f'<p class="note">{_e(why)} (final loss &le; (1 &minus; {beat_baseline:g}) &times; baseline).</p>'
        run = run.subset(keep, why=why)
    parts = []
    for title, fn in figures.ALL:
        try:
            fig = fn(run)
        except Exception as e:  # one broken figure must not cost the whole report
            fig = figures.missing_figure(title, f"could not be drawn: {type(e).__name__}: {e}")
        notes = "".join(f'<br><span class="note">{_e(n)}</span>' for n in dict.fromkeys(fig.notes))
        parts.append(f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{_png(fig)}">'
                     f"<figcaption>{_e(title)}{notes}</figcaption></figure>")
    problems = "".join(f'<li class="note">{_e(p)}</li>' for p in run.problems)
    name = run.attrs.get("sweep_name", os.path.basename(path))
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dalesim report: {_e(name)}</title>",
        f"<style>{STYLE}</style>",
        f"<script>{SCRIPT}</script>",
        "</head><body>",
        f"<h1>dalesim sweep &ldquo;{_e(name)}&rdquo; &mdash; {_e(os.path.basename(path))}</h1>",
        "<h2>Run</h2>",
        _facts(run),
        f"<ul>{problems}</ul>" if problems else "",
        selection,
        "<h2>Where alpha went</h2>" if run.has_metric("alpha") else "",
        _alpha_table(run),
        "<h2>Evaluation set</h2>" if run.has_metric("eval_loss") else "",
        ("<p>Final loss and accuracy below are those of a fixed evaluation set per replica: 256 trials drawn "
         "from a stream training never draws, the same at every checkpoint (not the last training batch).</p>"
         if run.has_metric("eval_loss") else ""),
        _evaluation_table(run),
        "<h2>Figures</h2>",
        f"<p>Figures show single replicas (thin lines or points) and the mean of each condition (thick); {_e(INTERVAL_TEXT)}, "
        "clipped to the quantity's range.</p>",
        *parts,
        "<h2>Replicas</h2>",
        _replica_table(run),
        "<h2>Sweep file</h2>",
        f"<pre>{_e(run.attrs.get('sweep_text', '(not recorded)'))}</pre>",
        "<details><summary>Resolved configuration</summary>",
        f"<pre>{_e(run.attrs.get('resolved_config', '(not recorded)'))}</pre></details>",
        f"<p><small>written {time.strftime('%Y-%m-%d %H:%M:%S')} in {time.time() - started:.1f} s "
        "by dalesim_analysis</small></p>",
        "</body></html>",
    ]
    return "\n".join(out)


def write_report(path, out, beat_baseline=None):
    """Writes the report of `path` to `out` (through a temporary file, so a reader never sees half)."""
    text = render_report(path, beat_baseline=beat_baseline)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, out)
    return out
