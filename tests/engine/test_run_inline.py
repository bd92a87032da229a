"""Sync runs stepped inline until they first wait (no event-loop round trip when they never do)."""

from __future__ import annotations

import asyncio
import gc

import orchnb
from orchnb.engine._loop import thread_loop


def _left(loop):
    """The loop's pending tasks, less the closing of earlier tests' async generators (the
    finalizer hook schedules those whenever the garbage collector meets one)."""
    return {t for t in asyncio.all_tasks(loop)
            if type(t.get_coro()).__name__ != "async_generator_athrow"}


def _chain(*steps):
    return orchnb.Chain("inline", list(steps), cache=False)


def test_a_run_that_never_waits_runs_as_a_real_task_and_leaves_none_behind():
    # Async generators of earlier tests finalized now (their aclose is a task on the loop
    # they ran on) and such tasks ended: not counted as this run's.
    gc.collect()
    loop = thread_loop()
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()

    async def settle():
        await asyncio.gather(*leftovers, return_exceptions=True)

    loop.run_until_complete(settle())
    seen = {}

    def look(x):
        task = asyncio.current_task()
        seen["task"] = isinstance(task, asyncio.Task) and not task.done()
        return x.upper()

    run = _chain(orchnb.Step("a", "sim:echo", "say {{ input }}"),
                 orchnb.FunctionStep("up", look))("hi")
    assert run.output == "SAY HI" and run.status == "ok"
    assert seen["task"]  # asyncio.timeout, anyio and current_task() see a real task
    assert run._task is None and not _left(thread_loop())
    assert len(run.trace.spans) == 4  # the run, two steps and the model call, all recorded


def test_a_run_that_waits_goes_on_as_its_task_with_timeouts_and_listeners():
    ended = []

    class Hook:
        async def on_run_end(self, *, run):
            ended.append(run.status)

    async def slow(x):
        async with asyncio.timeout(5):  # needs the current task, before and after the hand-over
            await asyncio.sleep(0.001)
        return x + "!"

    pipe = _chain(orchnb.FunctionStep("a", lambda x: x), orchnb.FunctionStep("s", slow))
    run = pipe("yo", hooks=[Hook()])
    assert (run.output, run.status) == ("yo!", "ok")
    assert pipe("again").output == "again!"  # the thread's loop is reusable afterwards
    assert ended == ["ok"]
    assert not _left(thread_loop())


def test_an_error_inline_is_the_run_error():
    def boom(x):
        raise ValueError("no")

    pipe = _chain(orchnb.FunctionStep("boom", boom))
    try:
        pipe("x")
    except ValueError as e:
        assert e.run.status == "error"  # type: ignore[attr-defined]
    else:
        raise AssertionError("the run should have raised")


def test_the_run_is_one_task_before_and_after_it_first_waits():
    seen = []

    async def wait(x):
        seen.append(asyncio.current_task())
        await asyncio.sleep(0.001)
        seen.append(asyncio.current_task())
        return x

    pipe = _chain(orchnb.Step("a", "sim:echo", "{{ input }}"), orchnb.FunctionStep("w", wait))
    assert pipe("one").output == "one" and pipe("two").output == "two"
    first, after, second, _ = seen
    assert first is after and isinstance(first, asyncio.Task) and first.done()
    assert second is not first  # a run that waited took its task: the next gets its own
    assert not _left(thread_loop())


def test_where_inline_stepping_is_off_a_sync_run_is_a_plain_task(monkeypatch):
    # Other Python versions than the one the standby task leans on take this path.
    from orchnb.engine import _loop

    monkeypatch.setattr(_loop, "INLINE", False)
    seen = {}

    def look(x):
        seen["task"] = asyncio.current_task() is not None
        return x.upper()

    async def slow(x):
        await asyncio.sleep(0.001)
        return x + "!"

    run = _chain(orchnb.Step("a", "sim:echo", "say {{ input }}"),
                 orchnb.FunctionStep("up", look), orchnb.FunctionStep("wait", slow))("hi")
    assert run.output == "SAY HI!" and run.status == "ok" and seen["task"]
    assert [s for s in run.trace.df["kind"]].count("step") == 3
