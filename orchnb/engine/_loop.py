"""Where runs execute: the caller's loop, a per-thread loop, or the engine's background loop.

A plain synchronous cell in Jupyter already has a running event loop, so ``asyncio.run`` fails
there; runs started from sync code inside a running loop (and all stepped runs) execute on one
background loop thread instead, and the caller waits without blocking that loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from asyncio import events, tasks
from collections.abc import Callable, Coroutine, Generator
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


class _InlineTask:
    """Stands for a run's task while it runs inline (``asyncio.current_task()``, and with it
    ``asyncio.timeout``, needs one); once the run waits, it forwards to the real task."""

    __slots__ = ("_cancels", "real")

    def __init__(self) -> None:
        self.real: asyncio.Task[Any] | None = None
        self._cancels = 0

    def cancel(self, msg: Any = None) -> bool:
        if self.real is not None:
            return self.real.cancel(msg)
        self._cancels += 1
        return True

    def cancelling(self) -> int:
        return self.real.cancelling() if self.real is not None else self._cancels

    def uncancel(self) -> int:
        if self.real is not None:
            return self.real.uncancel()
        self._cancels = max(0, self._cancels - 1)
        return self._cancels

    def done(self) -> bool:
        return self.real is not None and self.real.done()

    def handed_over(self, real: asyncio.Task[Any]) -> None:
        self.real = real
        if self._cancels:
            real.cancel()


class _Continued:
    """The rest of a coroutine that was stepped inline, as an awaitable a task can drive:
    it first yields what the coroutine was waiting on when it was handed over."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any):
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:  # the task throws in (a cancellation)
                try:
                    value = coro.throw(e)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _rest(continued: _Continued) -> Any:
    return await continued


def run_on_thread_loop(coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop,
                       on_task: Callable[[asyncio.Task[Any] | _InlineTask], None]) -> None:
    """Run ``coro`` to its end on this thread (no loop running here). It is stepped inline,
    as ``loop``'s current task, until it first waits on something (a timer, I/O, another
    task): a run that never waits (sim models, cache hits, Python steps) pays no event-loop
    round trip. From its first wait it goes on as a task of ``loop``. ``on_task`` is told the
    task (inline, then the real one) so that a cancellation can reach it."""
    ctx = contextvars.copy_context()
    inline = _InlineTask()
    on_task(inline)
    events._set_running_loop(loop)
    tasks._enter_task(loop, inline)
    try:
        first = ctx.run(coro.send, None)
    except StopIteration:
        first = _FINISHED
    except BaseException:
        coro.close()
        raise
    finally:
        tasks._leave_task(loop, inline)
        events._set_running_loop(None)
    if first is _FINISHED:
        if getattr(loop, "_ready", None):  # callbacks the run scheduled get their turn
            loop.run_until_complete(asyncio.sleep(0))
        return
    task = loop.create_task(_rest(_Continued(coro, first)), context=ctx)
    inline.handed_over(task)
    on_task(task)
    loop.run_until_complete(task)


_FINISHED = object()
