"""Where the code now running sits (its span, pattern, item and iteration), and the span scopes
that patterns open with ``ctx.span(...)``: the engine writes the span, patterns say what it holds
through typed setters (``set_output``, ``set_route``, ``note``...)."""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Any, Protocol

from ..exceptions import BudgetExceeded, MaxIterationsExceeded, RunCancelled
from ..trace import Span
from ._text import as_text

_perf = time.perf_counter


class _Scope:
    """Where the code now running sits when that is not its span's own position: a fan-out
    item (``item``) inside its span. Inside a span opened for it, the scope is the span itself
    (it has the same ``span_id``, ``pattern``, ``item`` and ``iteration``): no object a span."""

    __slots__ = ("item", "iteration", "pattern", "span", "span_id")

    def __init__(self, span: Span, pattern: str, item: int | None, iteration: int | None):
        self.span = span
        self.span_id = span.span_id
        self.pattern = pattern
        self.item = item
        self.iteration = iteration


Scope = _Scope | Span
_SCOPE: ContextVar[Scope] = ContextVar("orchnb_scope")


def span_of(scope: Scope) -> Span:
    """The span of a scope (a span is its own scope)."""
    return scope.span if scope.__class__ is _Scope else scope  # type: ignore[union-attr, return-value]


def status_of(exc: BaseException) -> str:
    """The span/run status an exception ends it with."""
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, MaxIterationsExceeded):
        return "max_iterations"
    if isinstance(exc, (asyncio.CancelledError, RunCancelled, KeyboardInterrupt)):
        return "cancelled"
    return "error"


class _Publisher(Protocol):
    _epoch: float
    run: Any
    bus: Any

    def _end(self, span: Span, token: Any = None, t0: float | None = None,
             exc: BaseException | None = None) -> None: ...


class SpanHandle:
    """What a pattern may say about a span: its input, output, route, iteration and notes.
    The engine keeps the rest (timing, status, tokens, cost) and bounds and scrubs the text.

    >>> with ctx.span("step", "classify", input=text) as scope:    # doctest: +SKIP
    ...     scope.set_route("billing", raw_label="Billing", confidence=0.9)
    ...     scope.set_output("billing")
    """

    __slots__ = ("span",)

    def __init__(self, span: Span):
        self.span = span
        """The span itself, to read (its id, step, pattern); write it through the setters."""

    def set_input(self, value: Any) -> None:
        """What the step was given (shown as text)."""
        self.span.input = as_text(value)

    def set_output(self, value: Any) -> None:
        """What the step returned (shown as text)."""
        self.span.output = value if value.__class__ is str else as_text(value)

    def set_route(self, route: str | None, *, raw_label: str | None = None,
                  confidence: float | None = None) -> None:
        """The route a classification or a hand-off picked, the label as the model wrote it, and
        how sure it was (0 to 1)."""
        span = self.span
        span.route, span.raw_label, span.confidence = route, raw_label, confidence

    def set_iteration(self, iteration: int | None) -> None:
        """The loop turn this span belongs to (agent iteration, plan version, team turn)."""
        self.span.iteration = iteration

    def note(self, **meta: Any) -> None:
        """Add keys to the span's ``meta`` (kept beside what the engine noted)."""
        span = self.span
        span.meta = {**(span.meta or {}), **meta}

    def fail(self, error: str, *, output: Any = None) -> None:
        """End the span as an error that was handled (the run goes on): ``error`` says why,
        ``output`` what the caller got instead."""
        span = self.span
        span.status, span.error = "error", error  # type: ignore[assignment]
        if output is not None:
            span.output = as_text(output)

    # Reads pass through to the span (its id, step, status...); writes go through the setters
    # above: assigning a column here raises, so no pattern writes span content by hand.
    def __getattr__(self, name: str) -> Any:
        if name == "span":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.span, name)


class SpanScope(SpanHandle):
    """A child span of the current scope, open for a ``with`` block (``ctx.span(...)``); the
    block's scope is this object (class-based, one frame to open and one to close: it is hot).
    The guarded path opens and closes its call spans itself (both end in ``RunContext._end``)."""

    __slots__ = ("_ctx", "_t0", "_token")

    def __init__(self, ctx: _Publisher, span: Span):
        self._ctx = ctx
        self.span = span

    def __enter__(self) -> SpanScope:
        scope = _SCOPE.get()
        span = self.span
        span.parent_id = scope.span_id
        if span.iteration is None:
            span.iteration = scope.iteration
        if span.item is None:
            span.item = scope.item
        self._token = _SCOPE.set(span)
        ctx = self._ctx
        t0 = self._t0 = _perf()
        span.start = ctx._epoch + t0
        run = ctx.run
        for f in ctx.bus.span_start:
            f(span=span, run=run)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._ctx._end(self.span, self._token, self._t0, exc)
