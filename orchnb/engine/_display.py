"""How a run shows itself: its repr line and its HTML table (no IPython needed).

A run's table stays readable however big the run: a summary line, the first rows and
"… N more (see run.trace.df)". A fan-out (a map over items) shows as one row per item, not one
per span, and only its first items (failed items first) under a line that counts them all.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..trace import Span, calls_frame, fmt_usd, plural, prompt_cache, prompt_cache_note
from ._text import as_text

if TYPE_CHECKING:
    from ._run import Run

MATHJAX_OFF = "tex2jax_ignore mathjax_ignore"
"""Class on the root of every HTML output that shows amounts: Jupyter must not typeset $…$."""

MAX_ROWS = 25
"""Rows a run table shows before "… N more (see run.trace.df)"."""
MAX_ITEMS = 5
"""Item rows shown per fan-out (failed items first) before "… N more items"."""
_SHOWN_KINDS = ("model", "tool", "step")
_E = html.escape


def run_money(run: Run) -> str:
    """The run's cost as a person reads it: ``unpriced`` when no model call has a known price
    (never ``$0``), ``$0.0042 (+2 unpriced)`` when some have none."""
    models = sum(1 for s in run.trace.spans if s.kind == "model")
    unpriced = run.unpriced_calls
    calls, saved = batch_saving(run.trace.spans)
    notes = [f"batch mode saved {fmt_usd(saved)} on {plural(calls, 'call')}"] if calls else []
    notes += [n for n in (prompt_cache_saving(run.trace.spans),) if n]
    money = ("unpriced" if models and unpriced >= models
             else fmt_usd(run.cost_usd, unpriced=unpriced))
    return money + "".join(f" ({n})" for n in notes)


def prompt_cache_saving(spans: Sequence[Span]) -> str:
    """What the prompt cache did for these calls ("prompt cache: 75% of prompt tokens read
    from cache, saved $X"), "" when no call read or wrote it. Priced by the trace's
    :func:`~orchnb.trace.prompt_cache`; pandas only for runs that used the prompt cache."""
    models = [s for s in spans if s.kind == "model"]
    if not any(s.cached_tokens or s.cache_write_tokens for s in models if not s.cached):
        return ""
    pc = prompt_cache(calls_frame(models))
    return prompt_cache_note(pc["prompt_tokens"].sum(), pc["cache_read_tokens"].sum(),
                             pc["cache_write_tokens"].sum(),
                             pc["prompt_cache_saved_usd"].sum(skipna=False))


def batch_saving(spans: Iterable[Span]) -> tuple[int, float]:
    """Model calls answered through a provider batch, and what that saved against the same
    calls at list price."""
    calls, saved = 0, 0.0
    for s in spans:
        if s.kind == "model" and s.batch and not s.cached and s.status == "ok":
            calls += 1
            if s.saved_usd is not None and not math.isnan(s.saved_usd):
                saved += s.saved_usd
    return calls, saved


def stopped_message(run: Run, how: str) -> str:
    """What an interrupted or cancelled run's error says: how far it got, counted as its
    progress bar counts, and where its partial trace is (never a guessed variable name)."""
    done = sum(1 for s in run.trace.spans
               if s.kind in ("model", "tool") and s.status in ("ok", "error"))
    where = (f"; its trace is also in orchnb.traces(run_id={run.id!r})"
             if getattr(run.options, "persist", False) else "")
    return (f"run of '{run.pipeline}' {how} after {plural(done, 'finished call')}. The partial "
            f"run is the pipeline's .last_run (or e.run after `except orchnb.RunCancelled as "
            f"e`){where}")


def _cost(s: Span) -> str:
    if s.kind != "model":
        return ""
    if s.priced is False or s.cost_usd is None or (isinstance(s.cost_usd, float)
                                                   and math.isnan(s.cost_usd)):
        return "<i>unpriced</i>"
    return _E(fmt_usd(s.cost_usd))


def _cells(step: str, kind: str, what: str, status: str, tokens: str, cost: str, ms: str,
           out: str, *, style: str = "") -> str:
    right = "style='text-align:right'"
    colour = "" if status in ("ok", "running", "paused", "") else " style='color:#c62828'"
    left = "style='text-align:left'"  # JupyterLab right-aligns table cells
    return (f"<tr{style}><td {left}>{step}</td><td {left}>{_E(kind)}</td><td {left}>{what}</td>"
            f"<td{colour}>{_E(status)}</td><td {right}>{tokens}</td><td {right}>{cost}</td>"
            f"<td {right}>{ms}</td><td style='text-align:left;max-width:40em;white-space:pre-wrap;"
            f"overflow-wrap:break-word'>{_E(out[:300])}</td></tr>")


def _span_row(s: Span) -> str:
    tokens = "" if s.input_tokens is None else f"{s.input_tokens:,} → {s.output_tokens or 0:,}"
    what = s.tool if s.kind == "tool" else (f"{s.provider}:{s.model}" if s.model else "")
    flags = " ".join(f for f, on in (("sim", s.simulated), ("cached", s.cached)) if on)
    return _cells(_E(s.step), s.kind, f"{_E(what or '')} <i>{flags}</i>", s.status, tokens,
                  _cost(s), f"{(s.latency_ms or 0):.1f}", as_text(s.output or s.error or ""))


def _worst(statuses: Iterable[str]) -> str:
    seen = set(statuses)
    for bad in ("error", "cancelled", "running", "paused"):
        if bad in seen:
            return bad
    return "ok" if seen else ""


def _item_row(step: str, item: int, spans: Sequence[Span]) -> str:
    """One row for one item of a fan-out: its calls summed, its step's output."""
    head = next((s for s in spans if s.kind == "step"), spans[0])
    models = [s for s in spans if s.kind == "model"]
    names = sorted({f"{s.provider}:{s.model}" for s in models if s.model}
                   | {s.tool or "" for s in spans if s.kind == "tool"} - {""})
    tokens = sum((s.input_tokens or 0) + (s.output_tokens or 0) for s in models)
    costs = [s.cost_usd for s in models if s.priced is not False and s.cost_usd is not None]
    unpriced = len(models) - len(costs)
    cost = ("<i>unpriced</i>" if models and not costs
            else _E(fmt_usd(sum(costs), unpriced=unpriced)) if models else "")
    calls = sum(1 for s in spans if s.kind in ("model", "tool"))
    out = as_text(head.output or head.error or next((s.error for s in spans if s.error), "") or "")
    return _cells(f"{_E(step)} <b>[{item}]</b>", "item", _E(", ".join(names)) +
                  (f" <i>{plural(calls, 'call')}</i>" if calls > 1 else ""),
                  _worst(s.status for s in spans), f"{tokens:,}" if models else "", cost,
                  f"{(head.latency_ms or 0):.1f}", out)


def _fanout_rows(step: str, items: dict[int, list[Span]]) -> list[str]:
    """A summary line for the whole fan-out, then its first items, failed ones first."""
    status = Counter(_worst(s.status for s in spans) for spans in items.values())
    failed = [i for i, spans in items.items() if _worst(s.status for s in spans) != "ok"]
    shown = (failed + [i for i in items if i not in set(failed)])[:MAX_ITEMS]
    counts = ", ".join(f"{n:,} {k}" for k, n in status.most_common())
    rows = [f"<tr style='background:#f6f8fa'><td colspan='8'><b>{_E(step)}</b> × "
            f"{plural(len(items), 'item')} ({_E(counts)})</td></tr>"]
    rows += [_item_row(step, i, items[i]) for i in sorted(shown)]
    if len(items) > len(shown):
        rows.append(f"<tr><td colspan='8'><i>… {len(items) - len(shown):,} more items of "
                    f"<b>{_E(step)}</b> (see <code>run.trace.df</code>)</i></td></tr>")
    return rows


def _blocks(spans: Sequence[Span]) -> list[str | tuple[str, dict[int, list[Span]]]]:
    """The table's rows in time order: a span row, or a whole fan-out (step → item → spans)."""
    by_id = {s.span_id: s for s in spans}

    def item_of(s: Span) -> tuple[str, int] | None:
        cur: Span | None = s
        while cur is not None:  # a call inside an item: its item is on an ancestor
            if cur.item is not None:
                return cur.step, cur.item
            cur = by_id.get(cur.parent_id) if cur.parent_id else None
        return None

    out: list[str | tuple[str, dict[int, list[Span]]]] = []
    fanouts: dict[str, dict[int, list[Span]]] = {}
    for s in sorted(spans, key=lambda s: s.start):
        if s.kind not in _SHOWN_KINDS:
            continue
        key = item_of(s)
        if key is None:
            out.append(_span_row(s))
            continue
        step, item = key
        if step not in fanouts:
            fanouts[step] = {}
            out.append((step, fanouts[step]))
        fanouts[step].setdefault(item, []).append(s)
    return out


def _summary(spans: Sequence[Span]) -> str:
    kinds = Counter(s.kind for s in spans if s.kind in _SHOWN_KINDS)
    failed = sum(1 for s in spans if s.kind in ("model", "tool") and s.status == "error")
    parts = [plural(kinds[k], f"{k} span") for k in _SHOWN_KINDS if kinds[k]]
    if failed:
        parts.append(f"<span style='color:#c62828'>{plural(failed, 'failed call')}</span>")
    batched, saved = batch_saving(spans)
    if batched:
        parts.append(f"{plural(batched, 'batch call')} saved {_E(fmt_usd(saved))}")
    return " · ".join(parts)


def _table(spans: Sequence[Span]) -> str:
    rows: list[str] = []
    hidden = 0
    for block in _blocks(spans):
        more = [block] if isinstance(block, str) else _fanout_rows(*block)
        if len(rows) >= MAX_ROWS:
            hidden += 1 if isinstance(block, str) else sum(map(len, block[1].values()))
            continue
        rows += more
    if hidden:
        rows.append(f"<tr><td colspan='8'><i>… {plural(hidden, 'more span')} "
                    "(see <code>run.trace.df</code>)</i></td></tr>")
    return ("<table><thead><tr><th>step</th><th>kind</th><th>model / tool</th><th>status</th>"
            "<th>tokens in → out</th><th>cost</th><th>ms</th><th>output</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def run_html(run: Run) -> str:
    """The run's notebook view: header, output, summary and a bounded table of its spans."""
    colour = {"ok": "#2e7d32", "paused": "#1565c0", "running": "#1565c0"}.get(run.status, "#c62828")
    spans = run.trace.spans
    sim = (" <span style='background:#fff3cd;padding:0 4px'>simulated models</span>"
           if run.simulated else "")
    err = f"<div style='color:#c62828'>{_E(str(run.error))}</div>" if run.error else ""
    pending = run.pending
    if pending:
        b = pending[0]
        err += (f"<div>next: <b>{_E(b.kind)} call</b> of step <b>{_E(b.step)}</b> ({_E(b.name)})"
                f"{f' and {len(pending) - 1} more waiting' if len(pending) > 1 else ''} · "
                f"<code>run.step()</code> / <code>run.resume()</code></div>")
    return (
        f"<div class='{MATHJAX_OFF}'><b>{_E(run.pipeline)}</b> "
        f"<span style='color:{colour}'>{_E(run.status)}</span>"
        f" · {plural(run.calls, 'call')} · {plural(run.tokens, 'token')}"
        f" · {_E(run_money(run))}"
        f"{sim}{err}<div style='margin:4px 0;padding:6px;background:#f6f8fa;white-space:pre-wrap;"
        f"max-height:20em;overflow:auto'>"
        f"{_E(as_text(run.output)[:5000] if run.output is not None else '')}</div>"
        f"<div style='color:#555'>{_summary(spans)}</div>" + _table(spans) + "</div>")
