"""Work done in other processes (Ray workers) joining one run's trace, budget and rate limits.

The engine gives executors three pieces and knows nothing of Ray:

- worker side, :func:`run_items` runs items through a run of this same engine (retries,
  timeouts, cache) and hands each finished item's spans, tagged with its global ``item`` index
  and the worker, to ``commit`` (and, when the driver streams, each text chunk of a streaming
  call to ``live`` as it arrives); :class:`SharedLedger` is the budget client its run uses;
- driver side, :class:`Intake` publishes those spans into the driver's run as its own events
  (recorder, store, progress bars, playground see them like local spans), re-rooted under the
  span that fanned out, each item once even when a retried worker sends it again;
- :class:`LedgerServer` holds one :class:`Ledger` for every worker (it lives in an actor).
"""

from __future__ import annotations

import asyncio
import math
import os
import pickle
import socket
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from ..exceptions import BudgetExceeded, RunError
from ..trace import Span
from ._budget import Charge, Ledger
from ._config import Budget, RunOptions
from ._context import RunContext
from ._scope import _SCOPE, _Scope, span_of

_ITEM: ContextVar[int | None] = ContextVar("orchnb_remote_item", default=None)

Work = Callable[[RunContext, Any, dict[str, Any]], Awaitable[Any]]
"""What a worker runs per item: ``work(ctx, item, vars)`` (``vars["item"]`` is its index)."""
Commit = Callable[[int, list[Span], bool, Any], None]
"""``commit(item, spans, ok, output_or_error)``: one finished item, atomically."""
Live = Callable[[int, str, str, str, "int | None"], None]
"""``live(item, span_id, step, text, attempt)``: one text chunk of a streaming call."""


def worker_name() -> str:
    """``host:pid`` of this process (the spans' ``worker`` column)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _Collect:
    """Worker-side listener: the spans of each item, kept until the item is done; and the text
    chunks of streaming calls, handed on at once."""

    __slots__ = ("by_item", "live", "worker")

    def __init__(self, worker: str, live: Live | None = None):
        self.worker = worker
        self.live = live
        self.by_item: dict[int, list[Span]] = {}

    def on_stream_delta(self, *, span: Span, text: str, attempt: int | None = None) -> None:
        i = _ITEM.get()
        if self.live is not None and i is not None:
            self.live(i, span.span_id, span.step, text, attempt)

    def on_span_end(self, *, span: Span, run: Any) -> None:
        i = _ITEM.get()  # set in the item's task (listeners run in the task ending the span)
        if i is not None:
            span.worker = self.worker
            self.by_item.setdefault(i, []).append(span)


def _portable(e: BaseException) -> BaseException:
    """``e`` itself if it pickles, else a :class:`RunError` with its text (same message)."""
    try:
        pickle.dumps(e)
        return e
    except Exception:
        return RunError(f"{type(e).__name__}: {e}")


async def run_items(items: Sequence[tuple[int, Any]], work: Work, vars: dict[str, Any], *,
                    options: RunOptions, pipeline: str, pattern: str, concurrency: int,
                    commit: Commit, ledger: SharedLedger | None = None,
                    limiter: Callable[[Any], Awaitable[None]] | None = None,
                    live: Live | None = None) -> str:
    """Run ``(index, item)`` pairs through one engine run in this process; returns the run id.

    The run is not persisted and shows no progress (the driver does both with the spans it is
    given); every item, failed or not, is handed to ``commit`` with its spans as it finishes.
    With ``live`` (the driver has stream listeners), the run streams as the driver's would and
    each chunk goes to ``live``; without it, nothing streams here (nobody would see it).
    """
    from ._run import Run

    collect = _Collect(worker_name(), live)

    async def body(ctx: RunContext, _: Any) -> None:
        if ledger is not None:
            ctx.ledger = ledger  # type: ignore[assignment]
        ctx.limiter = limiter  # type: ignore[attr-defined]
        scope = _SCOPE.get()

        async def one(i: int, x: Any) -> None:
            _ITEM.set(i)
            _SCOPE.set(_Scope(span_of(scope), scope.pattern, i, scope.iteration))
            try:
                out, ok = await work(ctx, x, {**vars, "item": i}), True
            except Exception as e:
                out, ok = _portable(e), False
            commit(i, collect.by_item.pop(i, []), ok, out)

        await ctx.gather([lambda i=i, x=x: one(i, x) for i, x in items], concurrency=concurrency)

    opts = replace(options, persist=False, progress=False, budget=Budget(),
                   stream=options.stream and live is not None)
    run = Run(pipeline, pattern, None, body, opts, hooks=[collect])
    await run.arun()
    return run.id


class Intake:
    """Driver side: spans of remote items published into ``ctx``'s run under ``parent``.

    >>> intake = Intake(ctx, ctx.current_span(), total=100, label="map")   # doctest: +SKIP
    >>> intake.accept(item, spans, ok, output)                              # doctest: +SKIP
    """

    def __init__(self, ctx: RunContext, parent: Span, *, total: int, label: str | None):
        self.ctx = ctx
        self.parent = parent
        self.total = total
        self.label = label
        self.results: dict[int, tuple[bool, Any]] = {}
        self._seen: set[str] = set()
        self._streaming: dict[str, Span] = {}  # calls whose chunks arrive before their spans

    def accept(self, item: int, spans: list[Span], ok: bool, output: Any) -> bool:
        """Publish one finished item; False (and nothing published) if it was already in."""
        if item in self.results:
            return False  # a retried task ran it again: its first result stands
        self.results[item] = (ok, output)
        ctx, run = self.ctx, self.ctx.run
        prefix = f"{run.id}."
        roots = {s.span_id for s in spans}
        fresh: list[Span] = []
        for s in spans:
            sid = prefix + s.span_id
            self._streaming.pop(sid, None)
            if sid in self._seen:
                continue
            self._seen.add(sid)
            pid = s.parent_id
            s.parent_id = prefix + pid if pid in roots else self.parent.span_id
            s.span_id, s.run_id, s.pipeline = sid, run.id, run.pipeline
            fresh.append(s)
        for s in sorted(fresh, key=lambda s: s.start):
            ctx._start(s)
        spent = ctx.ledger.spent
        for s in fresh:  # in end order, children first, like local spans
            ctx._end(s)
            if s.kind == "model" and not s.cached:
                spent.calls += 1
                spent.tokens += (s.input_tokens or 0) + (s.output_tokens or 0)
                if s.cost_usd is not None and not math.isnan(s.cost_usd):
                    spent.usd += s.cost_usd
        if self.label is not None:
            ctx.progress(self.label, len(self.results), self.total)
        return True

    def delta(self, item: int, span_id: str, step: str, text: str,
              attempt: int | None) -> None:
        """Publish one text chunk of a remote item's streaming call, as a local call's chunk
        (under the span id its finished span will have)."""
        if item in self.results:
            return  # a retried task's late chunk: the item is in already
        ctx, run = self.ctx, self.ctx.run
        sid = f"{run.id}.{span_id}"
        span = self._streaming.get(sid)
        if span is None:
            span = self._streaming[sid] = Span(
                run.id, sid, self.parent.span_id, run.pipeline, self.parent.pattern, step,
                "model", item=item, attempt=attempt)
        for f in ctx.bus.stream_delta:
            f(span=span, text=text, run=run, attempt=attempt)

    def note(self, step: str, error: str, **meta: Any) -> None:
        """A span saying what happened to the remote work (a worker lost and retried)."""
        with self.ctx.span("step", step) as scope:
            scope.fail(error)
            scope.note(**meta)


class LedgerServer:
    """One budget for every worker (hosted in an actor): ``try_reserve`` never waits.

    >>> server = LedgerServer(Budget(max_calls=1))
    >>> server.try_reserve("s", Charge(1, 10, 0.0, True))[0]
    'ok'
    """

    def __init__(self, budget: Budget):
        self.ledger = Ledger(budget)

    def try_reserve(self, step: str, need: Charge) -> tuple[str, Any]:
        """``("ok", spent)``, ``("wait", spent)`` or ``("over", BudgetExceeded)``."""
        led = self.ledger
        limit = led._over(need, with_reserved=True)
        if limit is not None:
            if led.open:
                return "wait", led.spent
            if need.exact or led._reached() is not None:
                return "over", led.error(step, limit, need)
        r = led.reserved
        r.calls, r.tokens, r.usd = r.calls + need.calls, r.tokens + need.tokens, r.usd + need.usd
        led.open += 1
        return "ok", led.spent

    def settle(self, held: Charge, actual: Charge | None) -> Charge:
        self.ledger.settle(held, actual)
        return self.ledger.spent


class SharedLedger:
    """Worker side of :class:`LedgerServer`: the :class:`Ledger` interface the engine uses.

    ``reserve(step, need)`` asks the server (waiting while other workers' reservations are
    open); ``settle`` reports the actual charge; ``check_after`` judges on the spend the server
    last reported, so a cap stops every worker within one round trip.
    """

    def __init__(self, budget: Budget, reserve: Callable[[str, Charge], Awaitable[Any]],
                 settle: Callable[[Charge, Charge | None], None]):
        self.local = Ledger(budget)  # the view of the shared spend, for check_after
        self._reserve, self._settle = reserve, settle
        self.spent = self.local.spent

    @property
    def capped(self) -> bool:
        return self.local.capped

    async def reserve(self, step: str, need: Charge) -> Charge:
        while True:
            verdict, value = await self._reserve(step, need)
            if verdict == "over":
                raise value if isinstance(value, BudgetExceeded) else BudgetExceeded(str(value))
            self._seen(value)
            if verdict == "ok":
                return need
            await asyncio.sleep(0.01)

    def settle(self, held: Charge, actual: Charge | None) -> None:
        if held.settled:  # given back already (settling twice is a no-op, as in Ledger)
            return
        server_copy = replace(held)  # the server settles its own copy: not marked yet
        held.settled = True
        if actual is not None:
            s = self.spent
            s.calls, s.tokens = s.calls + actual.calls, s.tokens + actual.tokens
            if not math.isnan(actual.usd):
                s.usd += actual.usd
        self._settle(server_copy, actual)

    def check_after(self, step: str) -> None:
        self.local.check_after(step)

    def _seen(self, spent: Charge) -> None:
        s = self.spent  # never move backwards: our own settles may not have reached it yet
        s.calls, s.tokens, s.usd = (max(s.calls, spent.calls), max(s.tokens, spent.tokens),
                                    max(s.usd, spent.usd))

