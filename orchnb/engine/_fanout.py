"""Fan-out: run many thunks concurrently under one bound, each tagged with its item index
(``ctx.gather``). Cancelling the run cancels them all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from ._limiter import LEASE, Lease, Slots
from ._scope import _SCOPE, _Scope, span_of

T = TypeVar("T")


class FanOut(Generic[T]):
    """One ``gather``: with a bound, ``concurrency`` workers pull the next item, so there is no
    task (and no waiter on a semaphore) per item, which keeps large fan-outs at the floor's
    speed and memory. An item waiting to retry gives its slot back and a new worker takes the
    next item."""

    def __init__(self, thunks: Sequence[Callable[[], Awaitable[T]]], concurrency: int | None,
                 return_exceptions: bool,
                 progress: Callable[[int, int], None] | None):
        self.thunks = thunks
        self.n = n = len(thunks)
        self.return_exceptions = return_exceptions
        self.progress = progress
        self.scope = _SCOPE.get()
        self.workers = workers = min(concurrency or n, n)
        self.results: list[Any] = [None] * n
        self.next = 0  # one shared position: the workers take turns
        self.finished = 0
        self.failed: list[BaseException] = []
        self.tasks: list[asyncio.Future[None]] = []
        self.slots = Slots(workers, self._spawn) if workers < n else None

    def _spawn(self) -> None:
        if self.next < self.n:
            self.tasks.append(asyncio.ensure_future(self.work()))

    async def work(self) -> None:
        lease = None
        if self.slots is not None:
            lease = Lease(self.slots)
            LEASE.set(lease)
        scope, thunks, n, failed = self.scope, self.thunks, self.n, self.failed
        while self.next < n and not failed:
            i = self.next
            self.next = i + 1
            _SCOPE.set(_Scope(span_of(scope), scope.pattern, i, scope.iteration))
            try:
                if lease is not None:
                    await lease.take()
                self.results[i] = await thunks[i]()
            except Exception as e:
                if not self.return_exceptions:
                    failed.append(e)
                    raise
                self.results[i] = e
            finally:
                if lease is not None:
                    lease.give_back()
            # Counted only once the item finished: a cancelled one raised past (an interrupt
            # must leave the bar at the count the error message gives).
            if self.progress is not None:
                self.finished += 1
                self.progress(self.finished, n)

    async def run(self) -> list[Any]:
        tasks, failed = self.tasks, self.failed
        tasks.extend(asyncio.ensure_future(self.work()) for _ in range(self.workers))
        try:
            while not failed:  # workers spawned meanwhile are awaited too
                pending = [t for t in tasks if not t.done()]
                if not pending:
                    break
                await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            if failed:
                raise failed[0]
            return self.results
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
