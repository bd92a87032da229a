"""Follow a run as it goes: spans mapped onto graph nodes, summaries for the widgets, throttling.

A :class:`RunTracker` is a run hook (its methods are called on the engine's loop thread). It
maps every span to the playground node it belongs to (the path of enclosing pattern names plus
the step or tool name) and keeps per-node counters, so a refresh costs O(nodes), not O(spans),
even for a 1,000-item map.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..engine import Run, as_text, engine_loop, total_cost
from ..trace import Span

TEXT_CAP = 4000
CALLS_SHOWN = 30
PENDING_SHOWN = 20


class Throttle:
    """Calls ``fn`` at most once per ``interval`` seconds however often it is poked (from any
    thread); the call happens on the engine's loop thread, ``interval`` after the first poke.

    >>> t = Throttle(lambda: None, interval=0.1)
    >>> t.poke()
    """

    def __init__(self, fn: Callable[[], None], interval: float = 0.1):
        self._fn = fn
        self.interval = interval
        self._lock = threading.Lock()
        self._armed = False
        self._last = 0.0
        self.fired = 0
        """How many times ``fn`` ran (tests check the rate)."""

    def poke(self) -> None:
        with self._lock:
            if self._armed:
                return
            self._armed = True
        delay = max(0.0, self._last + self.interval - time.monotonic())
        loop = engine_loop()
        loop.call_soon_threadsafe(loop.call_later, delay, self._fire)

    def _fire(self) -> None:
        with self._lock:
            self._armed = False
        self.now()

    def now(self) -> None:
        """Call ``fn`` right away (a pause or the end of a run: the user is waiting for it)."""
        self._last = time.monotonic()
        self.fired += 1
        self._fn()


def _num(x: Any) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def _cap(text: Any, n: int = TEXT_CAP) -> str:
    s = "" if text is None else (text if isinstance(text, str) else as_text(text))
    return s if len(s) <= n else s[:n] + f"… [{len(s):,} chars]"


def messages_of(text: str | None) -> list[dict[str, Any]]:
    """A model span's ``input`` back as messages (one user message, or the JSON list)."""
    if not text:
        return []
    if text.startswith("[{"):
        try:
            msgs = json.loads(text)
            if isinstance(msgs, list) and all(isinstance(m, dict) and "role" in m for m in msgs):
                return [{"role": m["role"], "content": _cap(m.get("content", "")),
                         **({"tool_calls": m["tool_calls"]} if m.get("tool_calls") else {}),
                         **({"name": m["name"]} if m.get("name") else {})} for m in msgs]
        except ValueError:
            pass
    return [{"role": "user", "content": _cap(text)}]


def call_record(s: Span) -> dict[str, Any]:
    """What the detail pane shows for one model or tool call."""
    rec: dict[str, Any] = {
        "span_id": s.span_id, "kind": s.kind, "step": s.step, "status": s.status,
        "error": s.error, "latency_ms": _num(s.latency_ms), "item": s.item,
        "iteration": s.iteration, "retries": max(0, (s.attempt or 1) - 1),
        "output": _cap(s.output)}
    if s.kind == "model":
        tool_calls = []
        if s.meta:
            tool_calls = s.meta.get("tool_calls", [])
        cost = _num(s.cost_usd)
        rec.update(model=f"{s.provider}:{s.model}", messages=messages_of(s.input),
                   tool_calls=tool_calls, input_tokens=s.input_tokens,
                   output_tokens=s.output_tokens, cached_tokens=s.cached_tokens,
                   cost_usd=cost, unpriced=bool(s.kind == "model" and s.status == "ok"
                                                 and cost is None),
                   cached=bool(s.cached), simulated=bool(s.simulated))
    else:
        rec.update(tool=s.tool, arguments=_cap(s.input), rejected=s.error == "rejected by user")
    return rec


def boundary_record(b: Any, key: str) -> dict[str, Any]:
    """A call waiting at its boundary: the rendered request (model) or arguments (tool)."""
    rec: dict[str, Any] = {"key": key, "kind": b.kind, "step": b.step, "name": b.name,
                           "item": b.item, "iteration": b.iteration}
    if b.kind == "model":
        req = b.request
        rec["messages"] = [
            {"role": m.role, "content": _cap(m.content),
             **({"tool_calls": [{"name": c.name, "arguments": c.arguments}
                                for c in m.tool_calls]} if m.tool_calls else {})}
            for m in getattr(req, "messages", [])]
        rec["tools"] = [t.name for t in getattr(req, "tools", [])]
        rec["temperature"] = getattr(req, "temperature", None)
    else:
        rec["arguments"] = b.request if isinstance(b.request, dict) else {"value": b.request}
    return rec


class _NodeState:
    __slots__ = ("calls", "errors", "items", "iteration", "running", "status")

    def __init__(self) -> None:
        self.status = ""
        self.running = 0
        self.calls = 0
        self.errors = 0
        self.items: set[int] = set()
        self.iteration = 0

    def to_json(self) -> dict[str, Any]:
        return {"s": "running" if self.running > 0 else self.status, "c": self.calls,
                "e": self.errors, "n": len(self.items), "i": self.iteration}


class RunTracker:
    """Run hook mapping spans onto graph node keys (``root/child/...``) and counting per node."""

    def __init__(self, run: Run | None, keys: Iterable[str], root: str,
                 on_change: Callable[[], None] = lambda: None,
                 aliases: dict[str, str] | None = None):
        self.run = run
        self.keys = set(keys)
        self.aliases = dict(aliases or {})
        self.root = root
        self.on_change = on_change
        self._paths: dict[str, tuple[str, ...]] = {}
        self.key_of: dict[str, str] = {}
        self.spans_by_key: dict[str, list[Span]] = {}
        self.nodes: dict[str, _NodeState] = {}
        self.running: dict[str, Span] = {}
        self.partial: dict[str, tuple[int | None, str]] = {}
        """Streamed text of calls still running, by span id (with the attempt it belongs to)."""

    # -- hook methods (engine loop thread) -----------------------------------------------------
    def on_span_start(self, *, span: Span) -> None:
        key = self._resolve(span)
        self.running[span.span_id] = span
        self.spans_by_key.setdefault(key, []).append(span)
        self.nodes.setdefault(key, _NodeState()).running += 1
        self.on_change()

    def on_span_end(self, *, span: Span) -> None:
        key = self.key_of.get(span.span_id) or self._resolve(span)
        self.partial.pop(span.span_id, None)
        if self.running.pop(span.span_id, None) is None:
            self.spans_by_key.setdefault(key, []).append(span)
        st = self.nodes.setdefault(key, _NodeState())
        st.running = max(0, st.running - 1)
        status = "rejected" if span.error == "rejected by user" else span.status
        if span.kind in ("model", "tool"):
            st.calls += 1
            if span.item is not None:
                st.items.add(span.item)
        if span.iteration:
            st.iteration = max(st.iteration, span.iteration)
        if status != "ok":
            st.errors += 1
        # A failed tool call (an observation the agent may recover from) should not paint a
        # later successful step red; the step/pattern span's own status is the node's status.
        if span.kind in ("step", "pattern", "run") or not st.status or status != "ok":
            st.status = status
        self.on_change()

    def on_stream_delta(self, *, span: Span, text: str, attempt: int | None = None) -> None:
        attempt_then, sofar = self.partial.get(span.span_id, (attempt, ""))
        # A retried stream starts over: what the failed attempt streamed is dropped.
        self.partial[span.span_id] = (attempt, (sofar if attempt_then == attempt else "") + text)
        self.on_change()

    def on_run_end(self, *, run: Run) -> None:
        self.partial.clear()
        self.on_change()

    # -- mapping ----------------------------------------------------------------------------------
    def _resolve(self, span: Span) -> str:
        parent = self._paths.get(span.parent_id or "", (self.root,))
        if span.kind == "run":
            path = (self.root,)
            self._paths[span.span_id] = path
            cands = [path]
        elif span.kind == "pattern":
            path = (*parent, span.step)
            self._paths[span.span_id] = path
            cands = [path]
        else:
            self._paths[span.span_id] = parent
            cands = [(*parent, span.step)]
            if span.kind == "tool" and span.tool:
                cands = [(*parent, span.tool), (*parent, span.step, span.tool), *cands]
        key = self._first_known(cands)
        self.key_of[span.span_id] = key
        return key

    def _first_known(self, cands: list[tuple[str, ...]]) -> str:
        for c in cands:
            k = "/".join(c)
            k = self.aliases.get(k, k)
            if k in self.keys:
                return k
        path = cands[-1]
        for n in range(len(path) - 1, 0, -1):  # the nearest enclosing node that is drawn
            k = "/".join(path[:n])
            k = self.aliases.get(k, k)
            if k in self.keys:
                return k
        return self.root

    def key_of_boundary(self, b: Any) -> str:
        """The node a waiting call belongs to: its step's running span decides the path."""
        best: Span | None = None
        for s in self.running.values():
            if s.kind == "step" and s.step == b.step and (best is None or s.start >= best.start):
                best = s
        base = self._paths.get(best.span_id, (self.root,)) if best is not None else (self.root,)
        cands = [(*base, b.step)]
        if b.kind == "tool":
            cands = [(*base, b.name), *cands]
        key = self._first_known(cands)
        if key == self.root and best is None:
            for k in self.keys:  # not yet entered: any node of that name
                if k.endswith("/" + b.step):
                    return k
        return key

    # -- summaries ------------------------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        run = self.run
        if run is None or run.done:
            return []
        return [boundary_record(b, self.key_of_boundary(b)) for b in run.pending[:PENDING_SHOWN]]

    def snapshot(self) -> dict[str, Any]:
        """The ``live`` trait: run status, per-node state, waiting calls, totals."""
        run = self.run
        if run is None:
            return {}
        pending = self.pending()
        spans = run.trace.spans
        cost, unpriced = total_cost(spans)
        root = next((s for s in reversed(spans) if s.kind == "run"), None)
        started = next(iter(self.running.values()), None)
        t0 = root.start if root else (started.start if started else time.time())
        latency = busy_ms(spans) if root and root.latency_ms is not None else (
            (time.time() - t0) * 1000.0)
        return {
            "run_id": run.id, "status": run.status, "done": run.done,
            "nodes": {k: st.to_json() for k, st in self.nodes.items()},
            "current": list(dict.fromkeys(p["key"] for p in pending)),
            "pending": pending, "pending_count": len(run.pending),
            "output": _cap(run.output) if run.output is not None else None,
            "error": str(run.error) if run.error is not None else None,
            "cost_usd": cost, "unpriced": unpriced, "tokens": run.tokens, "calls": run.calls,
            "latency_ms": latency, "simulated": run.simulated, "route": route_of(spans),
        }

    def _record(self, s: Span) -> dict[str, Any]:
        rec = call_record(s)
        streamed = self.partial.get(s.span_id) if s.status == "running" else None
        if streamed is not None:
            rec["output"], rec["streaming"] = _cap(streamed[1]), True
        return rec

    def detail(self, key: str) -> dict[str, Any]:
        """The detail pane of one node: its calls (latest last), its input/output, waiting calls."""
        spans = self.spans_by_key.get(key, [])
        calls = [s for s in spans if s.kind in ("model", "tool")]
        io = next((s for s in reversed(spans) if s.kind in ("step", "pattern", "run")), None)
        st = self.nodes.get(key)
        return {
            "key": key, "total_calls": len(calls),
            "calls": [self._record(s) for s in calls[-CALLS_SHOWN:]],
            "input": _cap(io.input) if io is not None else None,
            "output": _cap(io.output) if io is not None else None,
            "status": st.to_json()["s"] if st else "",
            "route": io.route if io is not None else None,
            "waiting": [p for p in self.pending() if p["key"] == key][:3],
        }


def busy_ms(spans: Iterable[Span]) -> float | None:
    """How long a run worked: the union of its leaf spans' intervals (calls, Python steps), so
    the time it sat paused at a step, waiting for a click or a tool approval, is left out.

    >>> a = Span("r", "r.2", "r.1", "p", "chain", "a", "model", start=0.0, end=1.0)
    >>> b = Span("r", "r.3", "r.1", "p", "chain", "b", "model", start=0.5, end=1.5)
    >>> c = Span("r", "r.4", "r.1", "p", "chain", "c", "model", start=9.0, end=10.0)
    >>> busy_ms([a, b, c])
    2500.0
    """
    spans = list(spans)
    parents = {s.parent_id for s in spans}
    leaves = sorted((s.start, s.end) for s in spans
                    if s.span_id not in parents and s.kind != "run" and s.end is not None)
    if not leaves:
        root = next((s for s in spans if s.kind == "run"), None)
        return _num(root.latency_ms) if root is not None else None
    total, (lo, hi) = 0.0, leaves[0]
    for start, end in leaves[1:]:
        if start > hi:
            total, lo = total + hi - lo, start
        hi = max(hi, end)
    return (total + hi - lo) * 1000.0


def route_of(spans: Iterable[Span]) -> str | None:
    """The route a run took (the outermost router's choice), if any."""
    best: Span | None = None
    for s in spans:
        if s.route and s.kind in ("run", "pattern", "step") and (
                best is None or s.start < best.start):
            best = s
    return best.route if best is not None else None


def history_entry(run: Run, n: int, edits: int) -> dict[str, Any]:
    """One row of the playground's run history."""
    root = next((s for s in run.trace.spans if s.kind == "run"), None)
    cost, unpriced = total_cost(run.trace.spans)
    return {"run_id": run.id, "n": n, "status": run.status, "input": _cap(run.input, 200),
            "output": _cap(run.output, 300) if run.output is not None else
            (str(run.error)[:300] if run.error else ""),
            "cost_usd": cost, "unpriced": unpriced, "tokens": run.tokens, "calls": run.calls,
            "latency_ms": busy_ms(run.trace.spans) if root else None,
            "route": route_of(run.trace.spans), "edits": edits, "simulated": run.simulated}
