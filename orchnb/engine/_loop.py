"""Where runs execute: the caller's loop, a per-thread loop, or the engine's background loop.

A plain synchronous cell in Jupyter already has a running event loop, so ``asyncio.run`` fails
there; runs started from sync code inside a running loop (and all stepped runs) execute on one
background loop thread instead, and the caller waits without blocking that loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..tools import background_loop

T = TypeVar("T")
_local = threading.local()


def engine_loop() -> asyncio.AbstractEventLoop:
    """The background loop (started on first use, a daemon thread)."""
    return background_loop("orchnb-engine")


def in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def thread_loop() -> asyncio.AbstractEventLoop:
    """A loop owned by the calling thread, reused across runs (for scripts without a loop)."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


def wait_future(fut: concurrent.futures.Future[T], on_interrupt: Callable[[], None],
                tick: Callable[[], None] | None = None) -> T:
    """Wait for a future from another thread; a KeyboardInterrupt calls ``on_interrupt``
    (which cancels the work) and then waits for the work to wind down. ``tick`` is called on
    the waiting thread about ten times a second (live displays draw there)."""
    interval = 0.1 if tick is not None else 0.25
    try:
        while True:
            try:
                return fut.result(timeout=interval)
            except concurrent.futures.TimeoutError:
                if tick is not None:
                    tick()
    except KeyboardInterrupt:
        on_interrupt()
        try:
            return fut.result(timeout=30)
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            raise KeyboardInterrupt from None


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule a coroutine on the engine loop from any thread."""
    return asyncio.run_coroutine_threadsafe(coro, engine_loop())
