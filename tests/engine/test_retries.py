"""Retries with manners: jittered waits that never undercut Retry-After, every failed attempt in
the trace, adaptive concurrency per provider and model, waiting retries hold no slot, and
fallback models once a step's retries are spent. Real SDKs over the loopback FakeProvider."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from orchnb import Chain, MapReduce, ProviderError, RetryPolicy, Step
from orchnb.engine._limiter import AIMDLimiter, limiter_for
from orchnb.models import resolve_model

FAST = RetryPolicy(max_attempts=3, backoff=0.01, max_backoff=0.02)


def test_backoff_is_full_jitter_between_zero_and_the_cap():
    policy = RetryPolicy(backoff=1.0, max_backoff=8.0)
    waits = [policy.delay(3, None) for _ in range(200)]
    assert all(0.0 <= w <= 4.0 for w in waits)
    assert len({round(w, 3) for w in waits}) > 150  # spread out, not one wave
    assert RetryPolicy(backoff=1.0, jitter=False).delay(2, None) == 2.0


def test_a_wait_is_never_shorter_than_retry_after():
    policy = RetryPolicy(backoff=0.5)
    waits = [policy.delay(1, 2.0) for _ in range(200)]
    assert all(2.0 <= w <= 2.5 for w in waits)
    assert max(waits) > 2.2


def test_retries_arrive_no_earlier_than_retry_after_and_every_attempt_is_traced(fake_env):
    fake_env.fail_next(2, "429", retry_after=0.2)
    chain = Chain("c", [Step("s", "openai:gpt-4o-mini", "{{ input }}")],
                  retry=RetryPolicy(max_attempts=3, backoff=0.01), cache=False)
    run = chain("hi")
    assert run.status == "ok"
    times = [r.received for r in fake_env.requests]
    assert len(times) == 3
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(times))
    span = next(s for s in run.trace.spans if s.kind == "model")
    assert span.attempt == 3 and span.status == "ok"
    tries = span.meta["attempts"]
    assert [t["status"] for t in tries] == [429, 429]
    assert all(t["wait_s"] >= 0.2 and t["retry_after"] == 0.2 for t in tries)
    assert "RateLimit" in tries[0]["error"] or "429" in tries[0]["error"]
    # The DataFrame keeps one row per call; the attempts are in its meta column, as JSON.
    df = run.trace.df
    row = df[df.kind == "model"].iloc[0]
    assert len(json.loads(row.meta)["attempts"]) == 2


def test_a_retry_after_longer_than_max_retry_after_ends_the_retries_at_once(fake_env):
    fake_env.fail_next(1, "429", retry_after=30)
    chain = Chain("c", [Step("s", "openai:gpt-4o-mini", "{{ input }}")],
                  retry=RetryPolicy(max_attempts=3, max_retry_after=1.0), cache=False)
    with pytest.raises(ProviderError) as info:
        chain("hi")
    assert len(fake_env.requests) == 1
    span = next(s for s in info.value.run.trace.spans if s.kind == "model")
    assert span.meta["attempts"][0]["wait_s"] is None  # gave up, did not wait


def test_failed_attempts_are_kept_when_the_call_fails_for_good(fake_env):
    fake_env.fail_next(3, "500")
    chain = Chain("c", [Step("s", "openai:gpt-4o-mini", "{{ input }}")], retry=FAST,
                  cache=False)
    with pytest.raises(ProviderError, match=r"[gG]ave up after 3 attempts"):
        chain("hi")
    span = next(s for s in chain.last_run.trace.spans if s.kind == "model")
    assert span.status == "error"
    assert [t["status"] for t in span.meta["attempts"]] == [500, 500, 500]


def test_fallback_models_answer_once_retries_are_spent_and_the_trace_says_which(fake_env):
    fake_env.fail_next(2, "503", retry_after=0)
    step = Step("s", "openai:gpt-4o-mini", "{{ input }}",
                fallback=["anthropic:claude-haiku-4-5"])
    chain = Chain("c", [step], retry=RetryPolicy(max_attempts=2, backoff=0.01), cache=False)
    run = chain("hi")
    assert run.status == "ok"
    assert [r.api for r in fake_env.requests] == ["openai", "openai", "anthropic"]
    span = next(s for s in run.trace.spans if s.kind == "model")
    assert (span.provider, span.model) == ("anthropic", "claude-haiku-4-5")
    assert span.meta["fallback_from"] == "openai:gpt-4o-mini"
    assert [t["model"] for t in span.meta["attempts"]] == ["openai:gpt-4o-mini"] * 2
    assert span.attempt == 3


def test_fallback_failing_too_names_every_model_tried(fake_env):
    fake_env.fail_next(4, "500")
    step = Step("s", "openai:gpt-4o-mini", "{{ input }}", fallback="openai:gpt-4o")
    chain = Chain("c", [step], retry=RetryPolicy(max_attempts=2, backoff=0.01), cache=False)
    with pytest.raises(ProviderError, match="models tried in order: openai:gpt-4o-mini, "
                                            "openai:gpt-4o"):
        chain("hi")


def test_yaml_fallback_key_builds_the_step():
    from orchnb.patterns import from_yaml

    pipe = from_yaml("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n"
                     "    prompt: hi\n    fallback: [sim:echo, sim:upper]\n")
    assert [m.id for m in pipe.children()[0].fallback] == ["sim:echo", "sim:upper"]


def test_aimd_limiter_halves_once_per_wave_and_grows_back_when_clean():
    lim = AIMDLimiter(initial=16)
    epoch = lim.epoch
    for _ in range(10):  # ten 429s from calls begun together: one decrease
        lim.overloaded(epoch)
    assert lim.limit == 8
    lim.overloaded(lim.epoch)
    assert lim.limit == 4
    for _ in range(4):  # one more call in flight per clean answer
        lim.succeeded()
    assert lim.limit == 8


def test_limiter_caps_calls_in_flight():
    async def main() -> int:
        lim = AIMDLimiter(initial=2)
        peak = [0]

        async def call() -> None:
            await lim.acquire()
            peak[0] = max(peak[0], lim.active)
            await asyncio.sleep(0.01)
            lim.release()

        await asyncio.gather(*(call() for _ in range(10)))
        return peak[0]

    assert asyncio.run(main()) == 2


def test_429s_lower_the_providers_concurrency_and_a_clean_answer_raises_it(fake_env):
    fake_env.fail_next(3, "429", retry_after=0)
    chain = Chain("c", [Step("s", "openai:gpt-4o-mini", "{{ input }}")], cache=False,
                  retry=RetryPolicy(max_attempts=4, backoff=0.01))
    assert chain("hi").status == "ok"
    model = resolve_model("openai:gpt-4o-mini")
    # 100 calls allowed at first; each 429 (to a call begun after the last cut) halves it.
    assert limiter_for(model.provider, model.name).limit == 100 / 8 + 1


def test_a_waiting_retry_gives_its_slot_to_the_next_item(fake_env):
    fake_env.fail_next(1, "429", retry_after=0.3)
    pipe = MapReduce("m", map=Step("s", "openai:gpt-4o-mini", "{{ input }}"),
                     reduce=lambda outputs: outputs, concurrency=1, cache=False,
                     retry=RetryPolicy(max_attempts=2, backoff=0.01))
    run = pipe(["a", "b", "c"])
    assert run.status == "ok" and len(run.output) == 3
    order = [r.last_user for r in fake_env.requests]
    # Item a waits 0.3 s to retry: b and c are served meanwhile, one at a time.
    assert order == ["a", "b", "c", "a"]


def test_run_cancelled_counts_only_completed_calls(fake_env):
    from orchnb import RunCancelled

    fake_env.latency = 0.05
    bar: list[int] = []

    class Bar:  # what the progress bar is told
        def on_progress(self, *, done, **_):
            bar.append(done)

    pipe = MapReduce("m", map=Step("s", "openai:gpt-4o-mini", "{{ input }}"),
                     reduce=lambda outputs: outputs, concurrency=4, cache=False)
    run = pipe.background([f"x{i}" for i in range(200)], hooks=[Bar()])
    import time

    while sum(1 for s in run.trace.spans if s.kind == "model" and s.status == "ok") < 5:
        time.sleep(0.01)
    run.cancel()
    run.wait()
    assert run.status == "cancelled"
    done = sum(1 for s in run.trace.spans if s.kind == "model" and s.status == "ok")
    assert isinstance(run.error, RunCancelled)
    assert f"after {done} finished calls" in str(run.error)
    assert done < 200
    assert bar[-1] == done  # the bar and the message agree: cancelled items are not "done"
    # The message names where the partial run is, not a variable that may hold another run.
    assert "run.trace.df" not in str(run.error) and ".last_run" in str(run.error)
    assert f"orchnb.traces(run_id='{run.id}')" in str(run.error)


def test_a_call_back_from_its_retry_wait_gets_the_next_slot_before_new_items():
    from orchnb.engine._limiter import Slots

    async def main() -> list[str]:
        order: list[str] = []
        slots = Slots(1, spawn=lambda: None)
        await slots.acquire()

        async def want(name: str, first: bool) -> None:
            await slots.acquire(first)
            order.append(name)
            slots.release()

        tasks = [asyncio.ensure_future(want(f"new{i}", False)) for i in range(3)]
        await asyncio.sleep(0)
        tasks.append(asyncio.ensure_future(want("retry", True)))
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(main()) == ["retry", "new0", "new1", "new2"]
