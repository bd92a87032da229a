"""Token streaming through the engine: ``pipe.stream`` / ``astream``, ``Step(stream=True)``,
YAML ``stream: true``, usage and ``ttft_ms`` recorded, cut streams retried and never ``ok``."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from orchnb import Chain, ProviderError, RetryPolicy, Step
from orchnb.testing import FakeReply

FAST = RetryPolicy(max_attempts=3, backoff=0.01, max_backoff=0.02)
LONG = "one two three four five six seven eight nine ten eleven twelve"


def two_sdks() -> Chain:
    return Chain("s", [Step("draft", "openai:gpt-4o-mini", "Draft: {{ input }}"),
                       Step("polish", "anthropic:claude-haiku-4-5", "Polish: {{ input }}")],
                 retry=FAST, cache=False)


@pytest.fixture
def streaming(fake_env):
    fake_env.chunk_delay = 0.03
    fake_env.responder = lambda request: FakeReply(text=LONG, input_tokens=40,
                                                   output_tokens=12)
    return fake_env


def test_stream_yields_chunks_of_each_step_before_the_run_ends(streaming):
    stream = two_sdks().stream("a memo")
    arrivals: list[tuple[float, str, str]] = []
    for chunk in stream:
        arrivals.append((time.perf_counter(), chunk.step, chunk.text))
    run = stream.run
    assert run.status == "ok" and run.output == LONG
    steps = [s for _, s, _ in arrivals]
    assert steps[0] == "draft" and steps[-1] == "polish"
    assert "".join(t for _, s, t in arrivals if s == "draft") == LONG
    assert "".join(t for _, s, t in arrivals if s == "polish") == LONG
    assert sum(s == "draft" for s in steps) > 5  # many small chunks, not one blob
    # chunks arrived spread over the run (a live stream), not all at its end
    assert arrivals[-1][0] - arrivals[0][0] > 0.2
    draft_done = next(s for s in run.trace.spans if s.kind == "model" and s.step == "draft").end
    assert arrivals[0][0] - time.perf_counter() + time.time() < draft_done


def test_streamed_calls_record_usage_and_ttft(streaming):
    stream = two_sdks().stream("a memo")
    list(stream)
    models = [s for s in stream.run.trace.spans if s.kind == "model"]
    assert [m.provider for m in models] == ["openai", "anthropic"]
    for m in models:
        assert m.input_tokens == 40 and m.output_tokens == 12 and m.status == "ok"
        assert m.ttft_ms is not None and 0 < m.ttft_ms < m.latency_ms
    df = stream.run.trace.df
    assert "ttft_ms" in df.columns and df[df.kind == "model"].ttft_ms.notna().all()


@pytest.mark.parametrize("fault", ["cut", "truncate"])
def test_a_cut_stream_is_retried_and_never_ok_with_partial_text(streaming, fault):
    streaming.fail_next(1, fault, cut_after=3)
    stream = two_sdks().stream("memo")
    chunks = list(stream)
    run = stream.run
    assert run.status == "ok" and run.output == LONG
    draft = next(s for s in run.trace.spans if s.kind == "model" and s.step == "draft")
    assert draft.attempt == 2 and draft.output == LONG
    attempts = {c.attempt for c in chunks if c.step == "draft"}
    assert attempts == {1, 2}  # the restart is visible to stream consumers


def test_a_stream_cut_every_time_fails_as_an_error_not_as_partial_text(streaming):
    streaming.fail_next(3, "cut", cut_after=2)
    stream = two_sdks().stream("memo")
    with pytest.raises(ProviderError, match=r"step 'draft'.*[gG]ave up after 3 attempts"):
        list(stream)
    draft = next(s for s in stream.run.trace.spans if s.kind == "model")
    assert draft.status == "error" and stream.run.status == "error"


def test_step_stream_flag_and_yaml_stream_key(streaming, ipython):
    hits = []

    class Deltas:
        def on_stream_delta(self, *, span, text, **_):
            hits.append(span.step)

    pipe = Chain("flag", [Step("a", "openai:gpt-4o-mini", "{{ input }}", stream=True),
                          Step("b", "openai:gpt-4o-mini", "{{ input }}")], cache=False)
    pipe("x", hooks=[Deltas()])
    assert set(hits) == {"a"}  # only the streaming step publishes deltas
    ipython.run_cell_magic("orch", "streamed", "pattern: chain\nstream: true\nsteps:\n"
                           "  - name: a\n    model: openai:gpt-4o-mini\n"
                           "    prompt: '{{ input }}'\n")
    assert ipython.user_ns["streamed"].options.stream is True
    ipython.run_cell_magic("orch", "stepstream", "pattern: chain\nsteps:\n"
                           "  - name: a\n    model: sim:echo\n    prompt: '{{ input }}'\n"
                           "    stream: true\n")
    assert ipython.user_ns["stepstream"].steps[0].stream is True


def test_astream_on_the_callers_loop(streaming):
    async def main():
        texts = []
        async for chunk in two_sdks().astream("memo"):
            texts.append((chunk.step, chunk.text))
        return texts

    texts = asyncio.run(main())
    assert "".join(t for s, t in texts if s == "polish") == LONG


def test_cached_and_sim_calls_stream_too():
    pipe = Chain("sim", [Step("a", "sim:echo", "hello there {{ input }}")])
    first = list(pipe.stream("world"))
    assert "".join(c.text for c in first) == "hello there world" and len(first) > 1
    again = pipe.stream("world")
    chunks = list(again)
    assert "".join(c.text for c in chunks) == "hello there world"
    model = next(s for s in again.run.trace.spans if s.kind == "model")
    assert model.cached and math.isnan(model.ttft_ms or math.nan)


def test_closing_a_stream_early_cancels_the_run_and_keeps_its_trace(streaming):
    with two_sdks().stream("memo") as stream:
        for _chunk in stream:
            break
    assert stream.run.status == "cancelled"
    assert stream.run.trace.spans[-1].kind == "run"  # the partial trace ends with the run span
