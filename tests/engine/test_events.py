"""The event stream: listeners get keyword-only events, only the keywords they take, and one
that raises is logged once while the run goes on."""

from __future__ import annotations

import asyncio
import logging

import orchnb
from orchnb import Chain, Step
from orchnb.engine import EVENTS


def chain() -> Chain:
    return Chain("ev", [Step("a", "sim:echo", "A {{ input }}"),
                        Step("b", "sim:echo", "B {{ input }}")], cache=False)


class Everything:
    def __init__(self):
        self.seen: list[tuple[str, str]] = []

    def on_run_start(self, *, run):
        self.seen.append(("run_start", run.pipeline))

    def on_span_start(self, *, span, run):
        self.seen.append(("start", span.kind))

    def on_span_end(self, *, span, run):
        self.seen.append(("end", span.kind))

    def on_run_end(self, *, run):
        self.seen.append(("run_end", run.status))


def test_listener_sees_every_span_start_and_end_in_order():
    listener = Everything()
    run = chain()("x", hooks=[listener])
    kinds = [k for e, k in listener.seen if e == "end"]
    assert kinds == ["model", "step", "model", "step", "run"]
    assert listener.seen[0] == ("run_start", "ev") and listener.seen[-1] == ("run_end", "ok")
    starts = [k for e, k in listener.seen if e == "start"]
    assert starts == ["run", "step", "model", "step", "model"]
    assert len(run.trace.spans) == 5  # the recorder is a listener like this one


def test_listener_gets_only_the_keywords_it_accepts():
    got = []

    class Narrow:
        def on_span_end(self, *, span):  # no `run`, no **kwargs: still called
            got.append(span.kind)

    chain()("x", hooks=[Narrow()])
    assert got[-1] == "run" and len(got) == 5
    assert set(EVENTS["on_span_end"]) == {"span", "run"}


def test_a_listener_that_raises_is_logged_once_and_the_run_goes_on(caplog):
    class Broken:
        calls = 0

        def on_span_end(self, *, span, **_):
            Broken.calls += 1
            raise RuntimeError("listener bug")

    with caplog.at_level(logging.WARNING, logger="orchnb"):
        run = chain()("x", hooks=[Broken()])
    assert run.status == "ok" and run.output == "B A x"
    assert Broken.calls == 5  # called for every span, despite raising
    logged = [r for r in caplog.records if "listener bug" in r.getMessage()]
    assert len(logged) == 1 and "Broken.on_span_end" in logged[0].getMessage()


def test_async_listener_is_scheduled_without_blocking_the_run():
    ended: list[str] = []

    class Slow:
        async def on_span_end(self, *, span, **_):
            await asyncio.sleep(0.05)
            ended.append(span.kind)

    async def main():
        run = await chain().arun("x", hooks=[Slow()])
        assert ended == []  # the run did not wait for its listener
        await asyncio.sleep(0.3)
        return run

    run = asyncio.run(main())
    assert run.status == "ok" and sorted(ended) == sorted(["model", "step"] * 2 + ["run"])


def test_add_hook_subscribes_every_run_and_remove_hook_stops_it():
    listener = Everything()
    orchnb.add_hook(listener)
    try:
        chain()("x")
    finally:
        orchnb.remove_hook(listener)
    n = len(listener.seen)
    assert n == 12
    chain()("y")
    assert len(listener.seen) == n


def test_progress_events_follow_a_fan_out():
    progress = []

    class Bar:
        def on_progress(self, *, label, done, total, **_):
            progress.append((label, done, total))

    pipe = orchnb.MapReduce("m", map=Step("m", "sim:echo", "{{ input }}"),
                            reduce=lambda outputs: len(outputs), concurrency=3, cache=False)
    run = pipe(list("abcdef"), hooks=[Bar()])
    assert run.output == 6
    assert progress[0][1:] == (0, 6) and progress[-1][1:] == (6, 6)
    assert [d for _, d, _ in progress] == list(range(7))
