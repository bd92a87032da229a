"""Replay: answer a run's calls from a recorded run instead of calling again.

A :class:`ReplaySource` is set on a run's options (``replay=``) and subscribed to its events.
As the run's spans start it matches each one to the recorded span at the same place: the same
parent (itself matched), the same kind, step, map item and loop iteration, and the same count
of such siblings before it. That place does not depend on timing, so map items finishing out of
order match all the same. The engine's guarded path asks the source first
(``RunContext._recorded``): a matched model or tool call is answered from the recorded
span (no provider call, cost 0, ``replayed`` set, ``saved_usd`` what it cost then).

Two modes:

- ``fork``: calls recorded before the fork point are replayed; the rest are called (the run
  pauses at the fork step's first call, where the edits apply);
- ``replay``: every call is replayed and none is ever made; the first place where the run no
  longer does what the recording did (a different request, a call the recording lacks, a step
  whose output differs) is a :class:`Difference` in the :class:`ReplayReport`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import ReplayError
from ..models import ModelResponse, ToolCall, Usage
from ._budget import Charge
from ._display import MATHJAX_OFF
from ._ops import ModelOp, ToolOp, ToolResult

if TYPE_CHECKING:
    from ..trace import Span
    from ._context import RunContext
    from ._ops import Op
    from ._run import Run

Base = tuple[str, str, "int | None", "int | None"]
"""Where a span sits among its siblings: kind, step, item, iteration."""


def span_seq(span: Span) -> int:
    """The order a span was opened in within its run (span ids are ``<run>.<n>``)."""
    try:
        return int(span.span_id.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return 0


def _base(span: Span) -> Base:
    return (span.kind, span.step, span.item, span.iteration)


class Recording:
    """A recorded run's spans, indexed by parent and place.

    >>> Recording([]).root is None
    True
    """

    def __init__(self, spans: Sequence[Span]):
        ordered = sorted(spans, key=span_seq)
        self.spans = ordered
        self.root: Span | None = next((s for s in ordered if s.kind == "run"), None)
        self.children: dict[str | None, dict[Base, list[Span]]] = {}
        for s in ordered:
            if s.kind != "run":
                self.children.setdefault(s.parent_id, {}).setdefault(_base(s), []).append(s)

    def calls(self) -> list[Span]:
        """The recorded model and tool calls, in the order they began."""
        return [s for s in self.spans if s.kind in ("model", "tool")]

    def fork_point(self, step: str, *, item: int | None = None,
                   iteration: int | None = None) -> Span | None:
        """The first recorded span of ``step`` (a step, pattern or tool name), or None."""
        for s in self.spans:
            if s.kind != "run" and _at(s, step, item, iteration):
                return s
        return None


def _at(span: Span, step: str, item: int | None, iteration: int | None) -> bool:
    return ((span.step == step or span.tool == step)
            and (item is None or span.item == item)
            and (iteration is None or span.iteration == iteration))


@dataclass(slots=True)
class Difference:
    """Where a replayed run first stopped doing what its recording did."""

    step: str
    """The step (or tool) at fault."""
    kind: str
    """The span kind: model, tool, step, pattern or run."""
    why: str
    """What differs, in words."""
    recorded: str | None = None
    now: str | None = None
    item: int | None = None
    iteration: int | None = None

    def __str__(self) -> str:
        where = "".join(f", {k} {v}" for k, v in (("item", self.item),
                                                  ("iteration", self.iteration)) if v is not None)
        return f"step '{self.step}' ({self.kind}{where}): {self.why}"


@dataclass(slots=True)
class ReplayReport:
    """What ``run.replay()`` found: ``ok`` when the re-run did what the recording did.

    >>> ReplayReport("abc", None).ok
    True
    """

    parent_id: str
    run: Run | None
    """The replayed run (its spans are all ``replayed``)."""
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def first(self) -> Difference | None:
        """The first difference, in the order the re-run met them (None when there is none)."""
        return self.differences[0] if self.differences else None

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        if self.ok:
            return f"<ReplayReport of run {self.parent_id}: no difference>"
        more = len(self.differences) - 1
        tail = f" (+{more} more)" if more else ""
        return f"<ReplayReport of run {self.parent_id}: {self.first}{tail}>"

    def _repr_html_(self) -> str:
        import html

        if self.ok:
            return (f"<div class='{MATHJAX_OFF}'>Replay of run <code>{self.parent_id}</code>: "
                    "<b>no difference</b></div>")
        rows = "".join(
            f"<tr><td>{html.escape(d.step)}</td><td>{d.kind}</td><td>{html.escape(d.why)}</td>"
            f"<td>{html.escape(_short(d.recorded))}</td><td>{html.escape(_short(d.now))}</td></tr>"
            for d in self.differences[:20])
        return (f"<div class='{MATHJAX_OFF}'>Replay of run <code>{self.parent_id}</code>: "
                f"first difference at "
                f"<b>{html.escape(self.first.step)}</b><table><tr><th>step</th><th>kind</th>"  # type: ignore[union-attr]
                f"<th>why</th><th>recorded</th><th>now</th></tr>{rows}</table></div>")


def _short(text: str | None, n: int = 80) -> str:
    if text is None:
        return ""
    return text if len(text) <= n else text[: n - 1] + "…"


class ReplaySource:
    """Answers a run's calls from a recording; a run listener and the engine's replay hook.

    ``until``: in ``fork`` mode, recorded calls opened before this span order are replayed and
    (with ``pause``) the run pauses at the first span of ``step`` (``item`` / ``iteration``
    narrow it down).
    """

    def __init__(self, recording: Recording, mode: Literal["fork", "replay"], *,
                 parent_id: str, until: int | None = None, step: str | None = None,
                 item: int | None = None, iteration: int | None = None, pause: bool = True):
        self.recording = recording
        self.mode = mode
        self.parent_id = parent_id
        self.until = until
        self.step, self.item, self.iteration = step, item, iteration
        self.differences: list[Difference] = []
        self.replayed = 0
        self._match: dict[str, Span | None] = {}
        self._counts: dict[tuple[str | None, Base], int] = {}
        self._used: set[str] = set()
        self._paused = not pause
        self._edited: set[str] = set()

    # -- listener ---------------------------------------------------------------------------
    def on_span_start(self, *, span: Span, run: Run) -> None:
        if span.kind == "run":
            span.forked_from = self.parent_id
            root = self.recording.root
            self._match[span.span_id] = root
            return
        base = _base(span)
        key = (span.parent_id, base)
        n = self._counts.get(key, 0)
        self._counts[key] = n + 1
        parent = self._match.get(span.parent_id)  # type: ignore[arg-type]
        found = None
        if parent is not None:
            kids = self.recording.children.get(parent.span_id, {}).get(base, ())
            found = kids[n] if n < len(kids) else None
        self._match[span.span_id] = found
        if self.step is not None and (span.parent_id in self._edited
                                      or _at(span, self.step, None, None)):
            self._edited.add(span.span_id)  # the edits reach these calls, earlier ones too
        if (self.mode == "fork" and not self._paused and self.step is not None
                and _at(span, self.step, self.item, self.iteration)):
            # The fork step begins: from here on, the run stops at each call (run.step()).
            self._paused = True
            gate = run._gate
            if gate is not None:
                gate.stepping = True

    def on_span_end(self, *, span: Span, run: Run) -> None:
        if self.mode != "replay" or span.kind in ("model", "tool"):
            return
        rec = self._match.get(span.span_id)
        if rec is None:
            if span.kind != "run":
                self._differ(span, "the recording has no such step here", None, span.output)
            return
        if span.status != rec.status and span.status not in ("cancelled",):
            self._differ(span, f"ended {span.status} (recorded: {rec.status})"
                         + (f": {span.error}" if span.error else ""), rec.output, span.output)
        elif (span.output or "") != (rec.output or ""):
            self._differ(span, "the output differs", rec.output, span.output)

    def on_run_end(self, *, run: Run) -> None:
        if self.mode != "replay" or self.differences or run.status != "ok":
            return
        missed = [s for s in self.recording.calls() if s.span_id not in self._used]
        if missed:
            s = missed[0]
            self._differ(s, f"the recording has {len(missed)} call(s) this run did not make, "
                            "the first one here", s.output, None)

    # -- the engine's hook ------------------------------------------------------------------
    def answer(self, ctx: RunContext, op: Op, span: Span) -> tuple[Any, Charge] | None:
        """The recorded result of ``op`` (filling ``span``), or None to call it for real."""
        if not isinstance(op, (ModelOp, ToolOp)):
            return None  # embeddings and memory: local or cached, their results are not kept
        rec = self._match.get(span.span_id)
        if self.mode == "fork":
            if rec is None or self.until is None or span_seq(rec) >= self.until:
                return None
        elif rec is None:
            self._differ(span, "a call the recording does not have", None, span.input)
            raise ReplayError(f"replay of run {self.parent_id} stopped at step '{span.step}': "
                              "this call is not in the recording (the pipeline now makes a "
                              "call it did not make)")
        edited = self.mode == "fork" and span.span_id in self._edited
        why = None if edited else _mismatch(op, span, rec)
        if why is not None:
            if self.mode == "replay":
                self._differ(span, why, rec.input, span.input)
                raise ReplayError(f"replay of run {self.parent_id} stopped at step "
                                  f"'{span.step}': {why}")
            raise ReplayError(
                f"fork of run {self.parent_id}: step '{span.step}' comes before the fork step "
                f"'{self.step}' but {why}: the pipeline (or the code it calls) changed since "
                "the run; fork from this step or an earlier one, or run the pipeline afresh")
        self._used.add(rec.span_id)
        self.replayed += 1
        result = _rebuild(op, rec)
        priced = rec.priced is not False
        saved = rec.saved_usd if rec.cached else rec.cost_usd  # a cache hit then: its saving
        saved = saved if saved is not None else math.nan
        span.replayed, span.attempt, span.priced, span.cached = True, 0, priced, False
        span.cost_usd = 0.0 if priced else math.nan
        span.saved_usd = saved if priced else math.nan
        op.fill(span, result)
        if isinstance(op, ToolOp):
            span.status, span.error = rec.status, rec.error  # type: ignore[assignment]
        elif op.streams:
            ctx._publish_whole(span, span.output or "")
        return result, Charge()

    def _differ(self, span: Span, why: str, recorded: str | None, now: str | None) -> None:
        self.differences.append(Difference(span.tool or span.step if span.kind == "tool"
                                           else span.step, span.kind, why, recorded, now,
                                           span.item, span.iteration))

    def report(self, run: Run | None) -> ReplayReport:
        return ReplayReport(self.parent_id, run, list(self.differences))


def _mismatch(op: Op, span: Span, rec: Span) -> str | None:
    """Why the call about to be made is not the recorded one (None: it is)."""
    if isinstance(op, ToolOp):
        if rec.tool != op.tool.name:
            return f"it now calls tool '{op.tool.name}' where the recording called '{rec.tool}'"
        if rec.input is not None and span.input != rec.input:
            return "the tool's arguments differ from the recording"
        return None
    if (rec.provider, rec.model) != (span.provider, span.model):
        return (f"it now calls {span.provider}:{span.model} where the recording called "
                f"{rec.provider}:{rec.model}")
    key = (rec.meta or {}).get("request") if isinstance(rec.meta, dict) else None
    if key is not None:
        if key != op.cache_key():  # type: ignore[attr-defined]
            return ("the prompt differs from the recording" if span.input != rec.input
                    else "the request's parameters (tools, temperature, max_tokens) differ "
                         "from the recording")
    elif rec.input is not None and span.input != rec.input:
        return "the prompt differs from the recording"
    return None


def _rebuild(op: Op, rec: Span) -> Any:
    """The recorded span's result in the form the operation returns."""
    meta = rec.meta if isinstance(rec.meta, dict) else {}
    if isinstance(op, ToolOp):
        text = rec.output or ""
        error = rec.status == "error"
        return ToolResult(op.call_id, op.tool.name, None if error else _value(text), text,
                          error, rec.error == "rejected by user")
    ids = meta.get("tool_call_ids") or []
    calls = [ToolCall(str(ids[i]) if i < len(ids) else f"call_{i}", str(c.get("name")),
                      c.get("arguments") or {})
             for i, c in enumerate(meta.get("tool_calls") or ()) if isinstance(c, dict)]
    text = meta["text"] if isinstance(meta.get("text"), str) else (rec.output or "")
    usage = Usage(rec.input_tokens or 0, rec.output_tokens or 0, rec.cached_tokens or 0,
                  bool(rec.simulated), rec.cache_write_tokens or 0,
                  rec.cache_write_1h_tokens or 0)
    return ModelResponse(text, calls, usage, rec.model or "", "tool_calls" if calls else "stop",
                         bool(rec.simulated), service_tier=rec.service_tier)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
