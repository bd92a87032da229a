"""Batch mode: model calls of independent items go through the providers' batch APIs, at the
batch price, in rounds.

Inside a batch fan-out (``ctx.gather(..., batch=True)``: ``evaluate(batch=True)``,
``MapReduce(batch=True)``) every item starts at once and a model call that misses the cache is
queued instead of sent. The engine counts the items still working; when every one of them waits
on a queued call (quiescence), the queue is submitted, one provider batch per provider and
model, and polled until it ends. Answers resolve the waiting calls, which then go on down the
guarded path like any other (price, span, cache), so each call is an ordinary model span with
``batch`` set. A later call of the same item (a chain's next step, an agent's next turn) is
queued again and goes in the next round. Budgets are checked for the whole round at its worst
case before anything is submitted; batch ids are kept in the store, so a re-run of the same
requests polls the batch it already paid for. Cancelling the run cancels its provider batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import BudgetExceeded, ProviderError
from ..models import BatchAPI, Model, ModelResponse, batch_api
from ..trace import get_store, live_batches, mark_batch, record_batch
from ._budget import Charge
from ._cache import cache_key
from ._fanout import FanOut
from ._ops import ModelOp

if TYPE_CHECKING:
    from ..trace import Span, SpanStore
    from ._context import RunContext

BATCHING: ContextVar[BatchRounds | None] = ContextVar("orchnb_batching", default=None)
"""The batch rounds of the code now running, when it runs inside a batch fan-out."""
POLL_FIRST, POLL_MAX = 0.02, 30.0
"""Seconds before the first poll of a batch, and the most between two polls (it grows 1.5×)."""
POLL_ERRORS = 5
"""Failed polls in a row after which the round gives up (the batch stays in the store)."""


@dataclass(slots=True, eq=False)
class _Waiter:
    op: ModelOp
    span: Span
    future: asyncio.Future[ModelResponse]
    key: str
    counted: bool = True


class BatchRounds:
    """The batch rounds of one run (made by the first batch fan-out, see the module doc)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.active = 0
        """Items of batch fan-outs that are still working (not suspended in a nested one)."""
        self.waiting = 0
        """Of those, items waiting on a queued or submitted call."""
        self.queue: list[_Waiter] = []
        self.rounds = 0
        self.batch_ids: list[str] = []
        """Provider batches this run submitted or resumed."""
        self.resumed = 0
        """Requests answered by a batch submitted earlier (a restarted kernel's)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._open: dict[str, BatchAPI] = {}
        """Batches submitted or resumed and not read back yet: an interrupted run cancels each
        (a round cancelled between a batch's creation and its polling would leave it paid)."""
        self._apis: dict[int, BatchAPI | None] = {}
        self._scheduled = False
        self.store: SpanStore | None = get_store() if ctx.options.persist else None

    # -- who is working ------------------------------------------------------------------------
    async def fan_out(self, thunks: Sequence[Callable[[], Awaitable[Any]]],
                      return_exceptions: bool,
                      report: Callable[[int, int], None] | None) -> list[Any]:
        """``ctx.gather`` inside batch mode: every item at once, each counted while it works."""
        caller = BATCHING.get() is self  # a counted item now suspended in this fan-out
        left = [len(thunks)]
        self.active += len(thunks) - caller

        def counted(thunk: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
            async def item() -> Any:
                try:
                    return await thunk()
                finally:
                    left[0] -= 1
                    self.active -= 1
                    self._check()
            return item

        token = BATCHING.set(self)
        try:
            return await FanOut([counted(t) for t in thunks], None, return_exceptions,
                                report).run()
        finally:
            BATCHING.reset(token)
            self.active += caller - left[0]  # items cancelled before they began never counted down
            self._check()

    def takes(self, op: Any) -> bool:
        """Whether ``op`` is a model call to batch (sim models are batched by simulation;
        providers without a batch API are called live)."""
        if not isinstance(op, ModelOp):
            return False
        return op.model.simulated or self._api(op.model) is not None

    def _api(self, model: Model) -> BatchAPI | None:
        key = id(model.provider)
        if key not in self._apis:
            self._apis[key] = None if model.simulated else batch_api(model.provider)
        return self._apis[key]

    # -- the calls ---------------------------------------------------------------------------
    async def call(self, op: ModelOp, span: Span) -> ModelResponse:
        """Queue ``op`` for the next round; its answer (or per-request error) when it comes."""
        op.batch = True
        span.attempt = 1
        m = op.model
        w = _Waiter(op, span, asyncio.get_running_loop().create_future(),
                    cache_key(m.provider_name, m.name, op.request))
        self.queue.append(w)
        self.waiting += 1
        self._check()
        try:
            return await w.future
        except (ProviderError, BudgetExceeded):
            # Providers bill no batch request that failed, and a refused round sent nothing.
            span.cost_usd, span.priced, span.batch = 0.0, True, True
            raise
        finally:
            if w.counted:  # cancelled while waiting
                w.counted = False
                self.waiting -= 1
                if w in self.queue:
                    self.queue.remove(w)

    def _resolve(self, w: _Waiter, answer: ModelResponse | BaseException) -> None:
        # Counted down here, not when the item resumes: an item that resumes first must not
        # see its neighbours as still working and submit a round of one.
        if w.counted:
            w.counted = False
            self.waiting -= 1
        if not w.future.done():
            if isinstance(answer, BaseException):
                w.future.set_exception(answer)
            else:
                w.future.set_result(answer)

    def _check(self) -> None:
        if self.queue and self.waiting >= self.active and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        self._scheduled = False
        if self.queue and self.waiting >= self.active:
            todo, self.queue = self.queue, []
            task = asyncio.ensure_future(self._round(todo))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel rounds still running (their provider batches are cancelled too)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for bid, api in list(self._open.items()):
            await self._cancel(api, bid)

    # -- a round ---------------------------------------------------------------------------------
    async def _round(self, todo: list[_Waiter]) -> None:
        self.rounds += 1
        ledger = self.ctx.ledger
        need = Charge()
        for w in todo:
            n = w.op.need(self.ctx.largest_output)
            need.calls, need.tokens, need.usd = (need.calls + n.calls, need.tokens + n.tokens,
                                                 need.usd + n.usd)
        limit = ledger.hold(need)
        if limit is not None:
            error = _refused(self.ctx, todo, need, limit)
            for w in todo:
                self._resolve(w, error)
            return
        groups: dict[tuple[int, str], list[_Waiter]] = {}
        for w in todo:
            groups.setdefault((id(w.op.model.provider), w.op.model.name), []).append(w)
        try:
            await asyncio.gather(*(self._group(ws) for ws in groups.values()))
        finally:
            if ledger.capped:  # the round's hold goes; each call books what it cost
                ledger.settle(need, None)

    async def _group(self, ws: list[_Waiter]) -> None:
        model = ws[0].op.model
        api = self._api(model)
        if api is None:  # a sim model: no provider batch, the same rounds, flags and prices
            answers = await asyncio.gather(
                *(model.provider.request(model.name, w.op.request) for w in ws),
                return_exceptions=True)
            for w, a in zip(ws, answers):
                self._resolve(w, a)
            return
        resumed, fresh = self._match(model, ws)
        follows = [self._follow(api, model, bid, cids) for bid, cids in resumed.items()]
        step = max(1, api.max_requests)
        for part in (fresh[i:i + step] for i in range(0, len(fresh), step)):
            bid = await self._submit(api, model, part)
            if bid is not None:
                follows.append(self._follow(api, model, bid,
                                            {f"r{i}": w for i, w in enumerate(part)}))
        await asyncio.gather(*follows)

    async def _submit(self, api: BatchAPI, model: Model, fresh: list[_Waiter]) -> str | None:
        """Submit ``fresh`` as one batch and record it; None when that failed (the waiters
        have the error). Interrupted while the provider answers, the batch is still recorded
        and cancelled: it may exist already, and an unknown batch would be paid for."""
        sent = asyncio.ensure_future(api.submit(model.name, [(f"r{i}", w.op.request)
                                                             for i, w in enumerate(fresh)]))
        try:
            bid = await asyncio.shield(sent)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(30):
                    bid = await sent
                self._record(model, bid, fresh)
                await self._cancel(api, bid)
            raise
        except Exception as e:
            for w in fresh:
                self._resolve(w, e)
            return None
        self._record(model, bid, fresh)
        self._open[bid] = api
        return bid

    def _record(self, model: Model, bid: str, fresh: list[_Waiter]) -> None:
        if self.store is not None:
            record_batch(self.store, bid, model.provider_name, model.name, _url(model),
                         self.ctx.run.id, [w.key for w in fresh])

    def _match(self, model: Model, ws: list[_Waiter]
               ) -> tuple[dict[str, dict[str, _Waiter]], list[_Waiter]]:
        """Requests a batch in the store already holds (submitted by an earlier kernel and never
        read back), by batch and custom id; and the rest, to submit."""
        if self.store is None:
            return {}, ws
        slots: dict[str, list[tuple[str, str]]] = {}
        for b in live_batches(self.store, model.provider_name, model.name, _url(model)):
            if b.batch_id not in self.batch_ids:
                for i, k in enumerate(b.keys):
                    slots.setdefault(k, []).append((b.batch_id, f"r{i}"))
        resumed: dict[str, dict[str, _Waiter]] = {}
        fresh = []
        for w in ws:
            found = slots.get(w.key)
            if found:
                bid, cid = found.pop(0)
                resumed.setdefault(bid, {})[cid] = w
                self.resumed += 1
            else:
                fresh.append(w)
        return resumed, fresh

    async def _follow(self, api: BatchAPI, model: Model, bid: str,
                      cids: dict[str, _Waiter]) -> None:
        """Poll batch ``bid`` to its end and hand each waiter its answer."""
        self.batch_ids.append(bid)
        self._open[bid] = api
        try:
            state = await self._poll(api, model, bid, len(cids))
            answers = await api.results(bid, model.name, {c: w.op.request
                                                          for c, w in cids.items()})
        except asyncio.CancelledError:
            await self._cancel(api, bid)
            raise
        except Exception as e:  # polling gave up: the batch stays running in the store
            self._open.pop(bid, None)  # for a later run to resume, not to cancel
            for w in cids.values():
                self._resolve(w, e)
            return
        failed = [c for c in cids if not isinstance(answers.get(c), ModelResponse)]
        self._open.pop(bid, None)
        if self.store is not None:
            mark_batch(self.store, bid, "ended", failed)
        for c, w in cids.items():
            self._resolve(w, answers.get(c) or ProviderError(
                f"{model.id}: batch {bid} ended ({state}) without an answer for request {c}",
                provider=model.provider_name, model=model.name))

    async def _poll(self, api: BatchAPI, model: Model, bid: str, n: int) -> str:
        wait, errors = POLL_FIRST, 0
        label = f"batch {model.id}"
        while True:
            try:
                st = await api.poll(bid)
            except ProviderError:
                errors += 1
                if errors >= POLL_ERRORS:
                    raise
            else:
                errors = 0
                self.ctx.progress(label, st.done + st.failed, st.total or n, failed=st.failed)
                if st.ended:
                    return st.state
            await asyncio.sleep(wait)
            wait = min(wait * 1.5, POLL_MAX)

    async def _cancel(self, api: BatchAPI, bid: str) -> None:
        self._open.pop(bid, None)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await api.cancel(bid)
        if self.store is not None:
            mark_batch(self.store, bid, "cancelled")


def _url(model: Model) -> str | None:
    url = getattr(model.provider, "url", None)
    return url if isinstance(url, str) else None


def _refused(ctx: RunContext, todo: list[_Waiter], need: Charge, limit: str) -> BudgetExceeded:
    models = ", ".join(sorted({w.op.model.id for w in todo}))
    b, spent = ctx.ledger.budget, ctx.ledger.spent
    if limit == "usd":
        size, cap, now = f"${need.usd:.6f}", f"the cost budget of ${b.max_usd:.4f}", \
            f"${spent.usd:.6f}"
    elif limit == "tokens":
        size, cap, now = f"{need.tokens:,} tokens", f"the token budget of {b.max_tokens:,}", \
            f"{spent.tokens:,} tokens"
    else:
        size, cap, now = f"{need.calls:,} calls", f"the call budget of {b.max_calls:,}", \
            f"{spent.calls:,} calls"
    return BudgetExceeded(
        f"batch mode: a batch of {len(todo):,} requests to {models} may cost up to {size} at "
        f"the batch price (every request at its max output tokens), over {cap} ({now} spent so "
        f"far); nothing was submitted. Raise the budget, lower the steps' max_tokens, or run "
        f"fewer items (a sample)", limit=limit)
