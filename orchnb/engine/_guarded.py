"""The guarded path every call takes: step boundary → budget reservation → span → cache →
attempts → price → settle (``RunContext`` has it; ``Op`` says what each kind of call does).

Each attempt is a request, so each reserves its own budget, and everything an attempt holds is
taken in one order (fan-out slot → budget → provider slot) and given back before its wait to
retry: a waiting call never holds what another waiter needs.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import CallTimeoutError, ProviderError
from ..models import StreamDelta
from ..trace import Span
from ._batch import BATCHING, BatchRounds
from ._budget import Charge, Ledger
from ._limiter import OVERLOAD, park
from ._ops import Op

if TYPE_CHECKING:
    from ._cache import ResponseCache
    from ._config import RunOptions
    from ._gate import Gate

_perf = time.perf_counter
_NAN = math.nan
_FAILED = Charge(calls=1)
"""What a failed request books: a call sent (its tokens, if any were billed, are unknown)."""


class GuardedPath:
    """The guarded path of ``RunContext`` (a base class of it: these are its methods)."""

    gate: Gate | None
    options: RunOptions
    ledger: Ledger
    largest_output: int
    limiter: Callable[[Op], Any] | None
    _cache: ResponseCache | None

    if TYPE_CHECKING:  # RunContext's, used here

        def enter_span(self, kind: str, step: str, input: Any = None, model: str | None = None,
                       provider: str | None = None, fill: Callable[[Span], None] | None = None
                       ) -> tuple[Span, Any, float]: ...

        def _end(self, span: Span, token: Any = None, t0: float | None = None,
                 exc: BaseException | None = None) -> None: ...

        def delta_sink(self, span: Span) -> Callable[[StreamDelta], None]: ...

        def _publish_whole(self, span: Span, text: str) -> None: ...

    def _guarded(self, op: Op) -> Awaitable[Any]:
        """Every call's path (its coroutine: ``ctx.call`` hands it back to be awaited); a call
        at a step boundary of a stepped run first waits at the gate."""
        if op.boundary is not None and self.gate is not None:
            return self._gated(op, self.gate)
        return self._call(op)

    async def _gated(self, op: Op, gate: Gate) -> Any:
        op.decision = await gate.wait(op.boundary)  # type: ignore[arg-type, attr-defined]
        try:
            return await self._call(op)
        finally:
            gate.call_done()

    async def _call(self, op: Op) -> Any:
        ledger = self.ledger
        rounds = BATCHING.get()
        if rounds is not None and not rounds.takes(op):
            rounds = None
        # The first reservation comes before the span: a call the budget refuses outright
        # was never made and leaves no call span (its step's span says why it stopped).
        # A batched call is budgeted with its whole round, before that is submitted.
        held = (await ledger.reserve(op.step, op.need(self.largest_output))
                if ledger.capped and rounds is None else None)
        # The call span, opened and closed right here (no scope object); its columns known
        # before the call come from the op.
        try:
            span, token, t0 = self.enter_span(op.kind, op.step, fill=op.open)
        except BaseException:
            self._release(held)
            raise
        try:
            hit, key = (self._recorded(op, span, held) if self.options.replay is not None
                        or self._cache is not None else (None, None))
            if hit is not None:
                result = hit[0]
            else:
                if rounds is not None:  # batch mode: answered by a provider batch
                    result = await rounds.call(op, span)  # type: ignore[arg-type]
                elif self.limiter is None and op.limiter is None and (
                        op.timeout is None or op.enforces_timeout):
                    # No limit, no timer: the first attempt here, the retry loop only after
                    # it fails; an answer the provider has at once (a sim) is not awaited.
                    span.attempt = 1
                    t1 = _perf()
                    try:
                        result = op.ready()
                        if result is None:
                            result = await op.attempt(span, self.delta_sink(span)
                                                      if op.streams else None)
                    except (TimeoutError, CallTimeoutError, ProviderError) as e:
                        result, held = await self._attempts(op, span, held, (e, t1))
                else:
                    result, held = await self._attempts(op, span, held)
                self._book(op, span, result, held, rounds, key)
        except BaseException as e:
            self._end(span, token, t0, e)
            if held is not None:  # no-op when already settled
                ledger.settle(held, None)
            raise
        self._end(span, token, t0)
        if ledger.capped:
            ledger.check_after(op.step)
        return result

    def _recorded(self, op: Op, span: Span, held: Charge | None
                  ) -> tuple[tuple[Any] | None, str | None]:
        """``((answer,), key)`` when a recorded run (a fork or replay) or the response cache
        answers the call, else ``(None, key)``: ``key`` is the cache's for the answer to come."""
        replay = self.options.replay  # a fork or replay: the recorded run answers first
        if replay is not None and (hit := replay.answer(self, op, span)) is not None:
            self._release(held)
            return (hit[0],), None
        cache = self._cache
        key = op.cache_key() if cache is not None else None
        salt = self.options.cache_salt
        if key is not None and salt and op.salted:  # repeat k of a row has a key of its own
            key = f"{key}:{salt}"
        if key is not None:
            hit = cache.get_json(key)  # type: ignore[union-attr]
            if hit is not None:
                self._release(held)
                result, usd = op.load(hit)
                # A cached answer costs nothing now and keeps the original's priced state:
                # an unknown price stays unknown (NaN, flagged), never $0.
                priced = usd is not None
                span.cached, span.attempt, span.priced = True, 0, priced
                span.cost_usd = 0.0 if priced else _NAN
                span.saved_usd = usd if priced else _NAN
                op.fill(span, result)
                if op.streams:
                    self._publish_whole(span, span.output or "")
                return (result,), key
        return None, key

    def _book(self, op: Op, span: Span, result: Any, held: Charge | None,
              rounds: BatchRounds | None, key: str | None) -> None:
        """A called answer: priced, settled against its reservation, written to its span and
        kept in the response cache (under ``key``, if any)."""
        try:
            charge, priced = op.charge(result, False)
        except BaseException:
            self._release(held)
            raise
        if not priced:
            charge.usd = _NAN
        if held is not None:  # the answering attempt's reservation, settled to the actual
            self.ledger.settle(held, charge)
        elif rounds is not None:
            self.ledger.book(charge)
        span.cost_usd, span.priced, span.cached = (charge.usd if priced else _NAN), priced, False
        op.fill(span, result)
        if op.kind == "model" and span.output_tokens is not None:
            self.largest_output = max(self.largest_output, span.output_tokens)
        if op.streams and span.ttft_ms is None:
            self._publish_whole(span, span.output or "")
        if key is not None and not op.fell_back:  # a fallback's answer is not the model's
            self._cache.put_json(key, op.dump(result, charge.usd if priced else None))  # type: ignore[union-attr]

    def _release(self, held: Charge | None) -> None:
        if held is not None:
            self.ledger.settle(held, None)

    async def _attempts(self, op: Op, span: Span, held: Charge | None,
                        failed: tuple[BaseException, float] | None = None
                        ) -> tuple[Any, Charge | None]:
        """Call until an attempt answers; returns the answer and the budget it still holds.
        ``failed``: the first attempt, made by the caller, failed so (its error, its start).

        Each attempt is a request, so each reserves its own budget, and everything an attempt
        holds is taken in one order (fan-out slot → budget → provider slot) and given back
        before its wait to retry: a waiting call never holds what another waiter needs.
        """
        policy = self.options.retry
        max_attempts = op.max_attempts or policy.max_attempts
        timeout = op.timeout
        ledger = self.ledger
        capped = ledger.capped
        failures: list[dict[str, Any]] | None = None
        attempt = tries = 0  # attempts of the current model; of the call, fallbacks included
        while True:
            if failed is not None:  # the caller's first attempt
                exc, t0 = failed
                failed = None
                attempt = tries = 1
            else:
                if capped and held is None:  # the first attempt's was taken before the span
                    held = await ledger.reserve(op.step, op.need(self.largest_output))
                attempt += 1
                tries += 1
                span.attempt = tries
                t0 = _perf()
                try:
                    if self.limiter is None and op.limiter is None and (
                            timeout is None or op.enforces_timeout):
                        # Nothing to wait for and no timer to set: the request itself (as
                        # _attempt would make it, one coroutine fewer).
                        result = await op.attempt(span, self.delta_sink(span) if op.streams
                                                  else None)
                    else:
                        result = await self._attempt(op, span, timeout)
                except (TimeoutError, CallTimeoutError, ProviderError) as e:
                    exc = e
                except BaseException:
                    if held is not None:
                        ledger.settle(held, None)
                    raise
                else:
                    if failures is not None:
                        _note_attempts(span, failures, op)
                    return result, held
            error: ProviderError | CallTimeoutError
            if isinstance(exc, TimeoutError):
                error = CallTimeoutError(f"did not answer within {timeout:g}s")
                retry_after, retryable, status = None, True, None
            elif isinstance(exc, CallTimeoutError):
                error, retry_after, retryable, status = exc, None, True, None
            else:
                error = exc  # type: ignore[assignment]  (a ProviderError)
                retry_after, retryable, status = error.retry_after, error.retryable, error.status
            if held is not None:  # a failed request still counts as a call sent
                ledger.settle(held, _FAILED)
                held = None
            give_up = (not retryable or attempt >= max_attempts
                       or policy.gives_up(retry_after))
            wait = None if give_up else policy.delay(attempt, retry_after)
            if failures is None:
                failures = []
            # Every failed attempt is kept (status, error, the wait that followed), so the trace
            # shows what a call went through, not only how many tries it took.
            failures.append({
                "attempt": tries, "model": op.model_id, "status": status,
                "error": f"{type(error).__name__}: {error}"[:300],
                "latency_ms": round((_perf() - t0) * 1000.0, 3),
                "retry_after": retry_after,
                "wait_s": None if wait is None else round(wait, 4),
            })
            span.ttft_ms = None  # a retried stream starts over
            if give_up:
                if op.next_fallback():  # the step's fallback models, in order
                    attempt = 0
                    span.provider, span.model = op.provider_name, op.model_name
                    continue
                _note_attempts(span, failures, op)
                raise _located(error, span, tries, op.tried) from None
            # The wait holds nothing: no fan-out slot, no budget, no provider slot.
            lease = park()
            await asyncio.sleep(wait)  # type: ignore[arg-type]
            if lease is not None:
                await lease.take(first=True)

    async def _attempt(self, op: Op, span: Span, timeout: float | None) -> Any:
        """One request, inside the run's rate limit and the provider's concurrency limit."""
        if self.limiter is not None and op.kind == "model":
            await self.limiter(op)  # the run's own limit, if one is set
        limiter = op.limiter
        epoch = await limiter.acquire() if limiter is not None else 0
        on_delta = self.delta_sink(span) if op.streams else None
        try:
            # Providers that enforce the timeout at their I/O (the SDKs, sim) spare the hot
            # path a timer; for any other provider the engine enforces it.
            if timeout is None or op.enforces_timeout:
                result = await op.attempt(span, on_delta)
            else:
                async with asyncio.timeout(timeout):
                    result = await op.attempt(span, on_delta)
        except ProviderError as e:
            if limiter is not None:
                limiter.release()
                if e.status in OVERLOAD:
                    limiter.overloaded(epoch)
            raise
        except BaseException:
            if limiter is not None:
                limiter.release()
            raise
        if limiter is not None:
            limiter.release()
            limiter.succeeded()
        return result


def _note_attempts(span: Span, failures: list[dict[str, Any]], op: Op) -> None:
    meta = dict(span.meta or {})
    meta["attempts"] = failures
    if op.tried and op.tried[0] != op.model_id:
        meta["fallback_from"] = op.tried[0]
    span.meta = meta


def _located(error: Exception, span: Span, attempts: int,
             tried: Sequence[str] = ()) -> Exception:
    text = str(error)
    # After a message that ends in a sentence (its advice), the count is a sentence too.
    sep = " Gave" if text.rstrip().endswith((".", "?")) else "; gave"
    tries = f"{sep} up after {attempts} attempts" if attempts > 1 else ""
    if len(tried) > 1:
        tries += f" (models tried in order: {', '.join(tried)})"
    error.args = (f"step '{span.step}' ({span.provider}:{span.model}): {text}{tries}",)
    error.step = span.step  # type: ignore[attr-defined]
    return error
