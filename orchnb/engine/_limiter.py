"""Adaptive concurrency per provider and model (AIMD), and the slots of a bounded fan-out.

A provider that answers 429 or 503 is told to slow down: the number of calls in flight to that
provider and model is halved (multiplicative decrease, at most once per wave of calls that were
in flight together), and grows again by one call per clean answer, so that it is back within
a few round trips once the provider answers cleanly. Scattered 429s among clean answers leave
it near the calls in flight; a storm of them takes it down to one call at a time.

Waiting retries hold no slot: the engine sleeps between attempts outside both this limit and the
fan-out's own ``concurrency`` (:class:`Lease`), and a call back from its wait gets the next
slot ahead of items not begun yet.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

OVERLOAD = frozenset({429, 503, 529})
"""HTTP statuses that mean "too many requests": they lower the limit."""


class AIMDLimiter:
    """Calls in flight to one provider and model, capped by an adaptive ``limit``.

    >>> lim = AIMDLimiter(initial=8)
    >>> lim.overloaded(lim.epoch); lim.limit
    4.0
    """

    __slots__ = ("_waiters", "active", "epoch", "increase", "limit", "maximum", "minimum")

    def __init__(self, initial: float = 100, minimum: float = 1, maximum: float = 512,
                 increase: float = 1.0):
        self.limit = float(initial)
        self.minimum = float(minimum)
        self.maximum = float(maximum)
        self.increase = increase
        """Calls added to the limit per clean answer."""
        self.active = 0
        self.epoch = 0
        """Bumped at each decrease: failures of calls begun before it do not decrease again."""
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for room; returns the epoch to hand back to :meth:`overloaded`."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return self.epoch
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # the releaser counted us in
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            raise
        return self.epoch

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.active += 1
                fut.set_result(None)

    def succeeded(self) -> None:
        """A clean answer: let one more call in, a little at a time."""
        if self.limit < self.maximum:
            self.limit = min(self.maximum, self.limit + self.increase)
            self._wake()

    def overloaded(self, epoch: int) -> None:
        """A 429/503 to a call begun in ``epoch``: halve the limit (once per epoch)."""
        if epoch == self.epoch:
            self.limit = max(self.minimum, self.limit / 2)
            self.epoch += 1


_LIMITERS: weakref.WeakKeyDictionary[Any, dict[str, AIMDLimiter]] = weakref.WeakKeyDictionary()
_BY_ID: dict[int, dict[str, AIMDLimiter]] = {}


def limiter_for(provider: Any, model: str) -> AIMDLimiter:
    """The limiter of ``model`` at this ``provider`` object (one per base URL and key)."""
    try:
        per = _LIMITERS.get(provider)
        if per is None:
            per = _LIMITERS[provider] = {}
    except TypeError:  # not weak-referenceable (slots): keyed by identity instead
        per = _BY_ID.setdefault(id(provider), {})
    lim = per.get(model)
    if lim is None:
        lim = per[model] = AIMDLimiter()
    return lim


class Slots:
    """The ``concurrency`` of a bounded ``gather``: at most ``n`` items work at once; an item
    waiting to retry gives its slot back and ``spawn`` starts a worker on the next item."""

    __slots__ = ("_waiters", "free", "spawn")

    def __init__(self, n: int, spawn: Callable[[], None]):
        self.free = n
        self.spawn = spawn
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, first: bool = False) -> None:
        """Wait for a slot; ``first``: ahead of items not begun yet (a call back from its
        wait to retry, whose span is open and whose latency counts)."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(fut)
        else:
            self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            raise

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the waiter
                return
        self.free += 1


class Lease:
    """One item's hold on a :class:`Slots` (released while the item waits to retry)."""

    __slots__ = ("held", "slots")

    def __init__(self, slots: Slots):
        self.slots = slots
        self.held = False

    async def take(self, first: bool = False) -> None:
        await self.slots.acquire(first)
        self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()


LEASE: ContextVar[Lease | None] = ContextVar("orchnb_lease", default=None)
"""The fan-out slot the code now running holds, if any."""


def park() -> Lease | None:
    """Before sleeping between attempts: free this item's fan-out slot for another item.
    After the sleep, ``await lease.take(first=True)`` gets it back ahead of new items."""
    lease = LEASE.get()
    if lease is not None and lease.held:
        slots = lease.slots
        waiting = bool(slots._waiters)
        lease.give_back()  # to a waiting item if there is one
        if not waiting:  # else a new worker takes the next item
            slots.spawn()
        return lease
    return None
