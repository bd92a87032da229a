"""``TraceView``: a table of spans that fills in as they finish, for one run or every run."""

from __future__ import annotations

import pathlib
import threading
from typing import Any

import anywidget
import traitlets as t

from ..engine import MATHJAX_OFF, Run, add_hook, remove_hook
from ..trace import Span, fmt_usd, plural
from ._live import Throttle, _cap, _num
from ._static import StaticFallback

_HERE = pathlib.Path(__file__).parent
NO_MATH = MATHJAX_OFF
"""Classes on the root of the static HTML: JupyterLab's MathJax would typeset the text between
two amounts ("$0.01 … $0.02") as math."""


class TraceView(StaticFallback, anywidget.AnyWidget):
    """A live table of spans (newest last), refreshed at most ``refresh_hz`` times a second.

    ``TraceView()`` follows every run in the session (through :func:`orchnb.add_hook`; call
    :meth:`close` to stop); ``TraceView(run)`` shows one run, and keeps following it if it is
    still going.

    >>> view = orchnb.TraceView()        # doctest: +SKIP
    >>> view; pipe("some input")         # doctest: +SKIP  (rows appear as spans finish)
    """

    _esm = _HERE / "traceview.js"
    _css = _HERE / "traceview.css"

    rows = t.List().tag(sync=True)
    """The last ``max_rows`` finished spans: run, step, kind, status, model/tool, tokens, cost,
    latency and output."""
    total = t.Int(0).tag(sync=True)
    """Spans seen (rows beyond ``max_rows`` are dropped from the table, oldest first)."""
    run_id = t.Unicode("").tag(sync=True)
    max_rows = t.Int(200).tag(sync=True)

    def __init__(self, run: Run | None = None, *, max_rows: int = 200, refresh_hz: float = 10.0,
                 **kwargs: Any):
        super().__init__(max_rows=max_rows, run_id=run.id if run is not None else "", **kwargs)
        self._lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._throttle = Throttle(self._flush, 1.0 / max(1.0, refresh_hz))
        if run is not None:
            # The run span last: its end is computed from a monotonic clock and may tie or
            # precede its last child's wall-clock end by microseconds.
            for span in sorted(run.trace.spans, key=lambda s: (s.kind == "run", s.end or s.start)):
                self._add(span)
            self._flush()
        if run is None or not run.done:
            add_hook(self)

    # -- run hook (engine thread) ---------------------------------------------------------------
    def on_span_end(self, *, span: Span) -> None:
        if self.run_id and span.run_id != self.run_id:
            return
        self._add(span)
        self._throttle.poke()

    def on_run_end(self, *, run: Run) -> None:
        if self.run_id and run.id == self.run_id:
            remove_hook(self)

    def _add(self, span: Span) -> None:
        with self._lock:
            if span.span_id in self._seen:
                return
            self._seen.add(span.span_id)
            self._buffer.append(row_of(span))

    def _flush(self) -> None:
        with self._lock:
            new, self._buffer = self._buffer, []
        if new:
            with self.hold_sync():
                self.total = self.total + len(new)
                self.rows = [*self.rows, *new][-self.max_rows:]

    def stop(self) -> None:
        """Stop following runs; the table stays as it is (``close()`` removes the widget)."""
        remove_hook(self)
        self._flush()  # what is buffered still shows

    def close(self) -> None:
        """Stop following runs and remove the widget from the page (see :meth:`stop`)."""
        remove_hook(self)
        super().close()

    def __repr__(self) -> str:
        which = f"run {self.run_id}" if self.run_id else "all runs"
        return f"<TraceView {which}: {plural(self.total, 'span')}>"


    def static_html(self) -> str:
        """The table as plain HTML (where widgets cannot render)."""
        import html

        cells = ("step", "kind", "what", "status", "tokens", "cost", "latency_ms", "output")
        head = "".join(f"<th>{c}</th>" for c in cells)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c) or ''))[:120]}</td>"
                                        for c in cells) + "</tr>" for r in self.rows[-50:])
        return (f"<table class='orchnb-tv-static {NO_MATH}'><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")


def _money(s: Span) -> str:
    """A model call's cost as every orchnb table shows it: ``fmt_usd``, ``unpriced`` (never
    ``$0``) when its price is unknown; nothing for other spans."""
    if s.kind != "model":
        return ""
    return "unpriced" if s.priced is False or _num(s.cost_usd) is None else fmt_usd(s.cost_usd)


def row_of(s: Span) -> dict[str, Any]:
    """One table row per span."""
    what = s.tool if s.kind == "tool" else (f"{s.provider}:{s.model}" if s.model else (
        s.pattern if s.kind in ("pattern", "run") else ""))
    tokens = None if s.input_tokens is None else (s.input_tokens or 0) + (s.output_tokens or 0)
    return {"span_id": s.span_id, "run_id": s.run_id, "parent_id": s.parent_id,
            "pipeline": s.pipeline, "step": s.step, "kind": s.kind, "status": s.status,
            "what": what, "tokens": tokens, "cost_usd": _num(s.cost_usd), "cost": _money(s),
            "latency_ms": _num(s.latency_ms), "item": s.item, "iteration": s.iteration,
            "route": s.route, "simulated": bool(s.simulated), "error": s.error,
            "output": _cap(s.output, 300), "start": s.start}
