"""How a run shows itself: its repr line and its HTML table (no IPython needed)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..trace import fmt_usd, plural
from ._text import as_text

if TYPE_CHECKING:
    from ._run import Run

MATHJAX_OFF = "tex2jax_ignore mathjax_ignore"
"""Class on the root of every HTML output that shows amounts: Jupyter must not typeset $…$."""


def run_html(run: Run) -> str:
    e = html.escape
    colour = {"ok": "#2e7d32", "paused": "#1565c0", "running": "#1565c0"}.get(run.status, "#c62828")
    rows = []
    for s in sorted(run.trace.spans, key=lambda s: s.start):
        if s.kind not in ("model", "tool", "step"):
            continue
        cost = "" if s.kind != "model" else (
            fmt_usd(s.cost_usd))
        tokens = "" if s.input_tokens is None else f"{s.input_tokens} → {s.output_tokens}"
        what = s.tool if s.kind == "tool" else (f"{s.provider}:{s.model}" if s.model else "")
        flags = " ".join(f for f, on in (("sim", s.simulated), ("cached", s.cached)) if on)
        out = as_text(s.output or s.error or "")
        rows.append(
            f"<tr><td>{e(s.step)}</td><td>{e(s.kind)}</td><td>{e(what)} <i>{flags}</i></td>"
            f"<td>{e(s.status)}</td><td style='text-align:right'>{tokens}</td>"
            f"<td style='text-align:right'>{cost}</td>"
            f"<td style='text-align:right'>{(s.latency_ms or 0):.1f}</td>"
            f"<td style='max-width:40em'>{e(out[:300])}</td></tr>")
    sim = (" <span style='background:#fff3cd;padding:0 4px'>simulated models</span>"
           if run.simulated else "")
    err = f"<div style='color:#c62828'>{e(str(run.error))}</div>" if run.error else ""
    pending = run.pending
    if pending:
        b = pending[0]
        err += (f"<div>next: <b>{e(b.kind)} call</b> of step <b>{e(b.step)}</b> ({e(b.name)})"
                f"{f' and {len(pending) - 1} more waiting' if len(pending) > 1 else ''} · "
                f"<code>run.step()</code> / <code>run.resume()</code></div>")
    return (
        f"<div class='{MATHJAX_OFF}'><b>{e(run.pipeline)}</b> "
        f"<span style='color:{colour}'>{e(run.status)}</span>"
        f" · {plural(run.calls, 'call')} · {plural(run.tokens, 'token')}"
        f" · {fmt_usd(run.cost_usd, unpriced=run.unpriced_calls)}"
        f"{sim}{err}<div style='margin:4px 0;padding:6px;background:#f6f8fa;white-space:pre-wrap'>"
        f"{e(as_text(run.output) if run.output is not None else '')}</div>"
        "<table><thead><tr><th>step</th><th>kind</th><th>model / tool</th><th>status</th>"
        "<th>tokens in → out</th><th>cost</th><th>ms</th><th>output</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></div>")
