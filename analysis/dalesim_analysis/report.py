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

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f2f2f2; } td.text { text-align: left; }
table.facts td:first-child { font-weight: bold; text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.note { color: #9a2b2b; } .status-running { color: #b26b00; } .status-complete { color: #1d7a32; }
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


def _png(fig, dpi=90):
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
        ("logged steps", _e(f"{run.history.sizes.get('step', 0)} rows, last step "
                            f"{int(run.history['step'].values[-1]) if run.history.sizes.get('step') else '-'}"
                            f" of {run.n_steps_planned}")),
        ("checkpoints", _e(run.checkpoints.sizes.get("step", 0))),
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


def _replica_table(run):
    if run.replicas.empty:
        return '<p class="note">no /replicas table in the file</p>'
    columns = ["id", *run.axes, "seed", "arch", "task", "status", "diverged_step"]
    columns = [c for c in dict.fromkeys(columns) if c in run.replicas]
    finals = {}
    for metric in ("loss", "accuracy", "alpha"):
        if metric in run.history.data_vars and run.history.sizes.get("step"):
            finals[f"final {metric}"] = run.final(metric)
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


def render_report(path):
    """The report of output file `path` as an HTML string."""
    started = time.time()
    run = load(path)
    parts = []
    for title, fn in figures.ALL:
        try:
            fig = fn(run)
        except Exception as e:  # one broken figure must not cost the whole report
            fig = figures.missing_figure(title, f"could not be drawn: {type(e).__name__}: {e}")
        notes = "".join(f'<br><span class="note">{_e(n)}</span>' for n in fig.notes)
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
        "<h2>Figures</h2>",
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


def write_report(path, out):
    """Writes the report of `path` to `out` (through a temporary file, so a reader never sees half)."""
    text = render_report(path)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, out)
    return out
