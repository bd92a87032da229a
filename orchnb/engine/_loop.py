"""Where runs execute: the caller's loop, a per-thread loop, or the engine's background loop.

A plain synchronous cell in Jupyter already has a running event loop, so ``asyncio.run`` fails
there; runs started from sync code inside a running loop (and all stepped runs) execute on one
background loop thread instead, and the caller waits without blocking that loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading
from asyncio import events, tasks
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from ..tools import background_loop

T = TypeVar("T")
_local = threading.local()
INLINE = sys.version_info[:2] == (3, 11) and all(
    hasattr(tasks, name) for name in ("_register_task", "_unregister_task", "_enter_task",
                                      "_leave_task")) and hasattr(events, "_set_running_loop")
"""Whether sync runs are stepped inline as a standby task (``run_on_thread_loop``). That leans
on asyncio internals as CPython 3.11 has them, the version it is tested on; elsewhere a sync
run is a plain task of the thread's loop (one event-loop round trip a run, nothing else
changes)."""
_EVENT_LOCK = threading.Lock()


class DoneFlag:
    """``threading.Event``'s ``is_set``/``set``/``wait``, with the event (a Condition and a
    lock, ~3 caught AttributeErrors to build) made only when a thread waits: most runs end
    before anyone does, and this is made for every run.

    >>> flag = DoneFlag(); flag.set(); flag.wait(0), flag.is_set()
    (True, True)
    """

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        # The flag is written before the event is read: a waiter that makes the event after
        # that read sees the flag (it checks it once the event is in place).
        self._flag = True
        event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        event = self._event
        if event is None:
            with _EVENT_LOCK:
                event = self._event
                if event is None:
                    event = self._event = threading.Event()
            if self._flag:
                event.set()
        return event.wait(timeout)


def engine_loop() -> asyncio.AbstractEventLoop:
    """The background loop (started on first use, a daemon thread)."""
    return background_loop("orchnb-engine")


def in_running_loop() -> bool:
    # Not get_running_loop(): it raises (and a sync run would pay for a caught RuntimeError).
    return events._get_running_loop() is not None


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


class _Continued(Coroutine[Any, Any, Any]):
    """The rest of a coroutine that was stepped inline, as the coroutine a task drives: its
    first ``send`` gives what the coroutine was waiting on when it was handed over; every
    step resumes it in the run's own context (the task's is the one it was made with, before
    the run). Not a Python coroutine: a standby that never runs warns of nothing."""

    __slots__ = ("coro", "ctx", "first", "started")

    def __init__(self) -> None:
        self.coro: Any = None
        self.ctx: contextvars.Context | None = None
        self.first: Any = None
        self.started = False

    def send(self, value: Any) -> Any:
        if not self.started:
            self.started = True
            first, self.first = self.first, None
            return first
        return self.ctx.run(self.coro.send, value)  # type: ignore[union-attr]

    def throw(self, *args: Any) -> Any:  # type: ignore[override]
        self.started = True
        return self.ctx.run(self.coro.throw, *args)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.coro is not None:
            self.coro.close()

    def __await__(self) -> Generator[Any, Any, Any]:  # (a task drives it by send/throw)
        raise TypeError("a continued run is driven by its task, not awaited")


class _Standby:
    """A task made ahead for this thread's next sync run, its first step held back: the run
    is stepped inline as that task (``asyncio.current_task()``, ``asyncio.timeout`` and anyio
    see a real one) and, if it ever waits, goes on as it. A run that never waits leaves it
    unused, for the next run: no task is made, registered and collected a run."""

    __slots__ = ("continued", "step", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.continued = continued = _Continued()
        held: list[tuple[Any, tuple[Any, ...], Any]] = []
        # The loop is this thread's own (thread_loop): its call_soon is shadowed just while the
        # task is made, to keep the task's first step.
        loop.call_soon = lambda cb, *args, context=None: held.append(  # type: ignore[method-assign]
            (cb, args, context))
        try:
            # As create_task would make it: the loop is this thread's own (open, no task
            # factory), so create_task's checks have nothing to find.
            task = tasks.Task(continued, loop=loop)
        finally:
            del loop.call_soon
        task._log_destroy_pending = False  # type: ignore[attr-defined]  (may never run)
        tasks._unregister_task(task)  # not one of the loop's tasks until it runs
        self.task, self.step = task, held[0]

    def go_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """Schedule the held-back first step: the task continues the run on ``loop``."""
        task = self.task
        task._log_destroy_pending = True  # type: ignore[attr-defined]
        tasks._register_task(task)
        cb, args, context = self.step
        loop.call_soon(cb, *args, context=context)


def run_on_thread_loop(coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop,
                       on_task: Callable[[asyncio.Task[Any] | None], None]) -> None:
    """Run ``coro`` to its end on this thread (no loop is running here).

    It is stepped inline, as this thread's standby task (see ``_Standby``), until it first
    waits on something (a timer, I/O, another task). A run that never waits (sim models,
    cache hits, Python steps) so pays no event-loop round trip and makes no task; one that
    does goes on as that task on ``loop`` (what Python 3.12's eager tasks do).
    """
    if not INLINE:
        task = loop.create_task(coro)
        on_task(task)
        loop.run_until_complete(task)
        return
    standby = getattr(_local, "standby", None)
    if standby is None or standby.task.get_loop() is not loop:
        standby = _local.standby = _Standby(loop)
    task, continued = standby.task, standby.continued
    ctx = contextvars.copy_context()
    on_task(task)
    events._set_running_loop(loop)
    tasks._enter_task(loop, task)
    try:
        first = ctx.run(coro.send, None)
    except BaseException as e:
        on_task(None)  # the standby stays unused: no one is to keep it
        if not isinstance(e, StopIteration):
            coro.close()
            raise
        finished = True
    else:
        finished = False
    finally:
        tasks._leave_task(loop, task)
        events._set_running_loop(None)
    if finished:
        if getattr(loop, "_ready", None):  # callbacks the run scheduled get their turn
            loop.run_until_complete(asyncio.sleep(0))
        return
    _local.standby = None  # this run's task now; the next run gets a new one
    continued.coro, continued.ctx, continued.first = coro, ctx, first
    standby.go_on(loop)
    loop.run_until_complete(task)
