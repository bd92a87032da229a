"""Streaming through the real ``openai`` and ``anthropic`` SDKs over loopback SSE, and sim's."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import pytest

from orchnb.exceptions import CallTimeoutError, ProviderError
from orchnb.models import (
    Message,
    ModelRequest,
    SimModel,
    SimProvider,
    StreamDelta,
    ToolSpec,
)
from orchnb.models._anthropic import AnthropicProvider
from orchnb.models._openai import OpenAIProvider
from orchnb.testing import FakeReply

ADD = ToolSpec("add", "Add two integers.", {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
})


@dataclass
class Vendor:
    cls: type
    url_attr: str
    tool_finish: str


VENDORS = {
    "openai": Vendor(OpenAIProvider, "openai_base_url", "tool_calls"),
    "anthropic": Vendor(AnthropicProvider, "anthropic_base_url", "tool_use"),
}


@pytest.fixture(params=list(VENDORS))
def vendor(request) -> Vendor:
    return VENDORS[request.param]


def ask(text: str = "hi", **kw) -> ModelRequest:
    return ModelRequest([Message("user", text)], **kw)


def stream(vendor: Vendor, fake, request: ModelRequest | None = None):
    """Stream one request; returns (response, [(perf_counter, delta), ...])."""
    provider = vendor.cls(api_key="sk-test", base_url=getattr(fake, vendor.url_attr))
    seen: list[tuple[float, StreamDelta]] = []
    response = asyncio.run(provider.request(
        "m", request or ask(), lambda d: seen.append((time.perf_counter(), d))))
    return response, seen


def texts(seen) -> list[str]:
    return [d.text for _, d in seen if d.kind == "text"]


def test_text_chunks_arrive_in_order_before_the_stream_ends(vendor, fake):
    fake.chunk_delay = 0.1
    fake.script(["one two three four five"])
    response, seen = stream(vendor, fake)
    assert texts(seen) == ["one ", "two ", "three ", "four ", "five"]
    assert response.text == "one two three four five" and response.finish_reason
    sent = fake.requests[-1].chunk_times
    # The first piece reached on_delta before the server had even sent its last chunk.
    assert seen[0][0] < sent[-1]
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)


def test_usage_is_read_from_the_stream(vendor, fake):
    fake.script([FakeReply(text="x y", input_tokens=120, output_tokens=9, cached_tokens=100)])
    response, _ = stream(vendor, fake)
    u = response.usage
    assert (u.input_tokens, u.output_tokens, u.cached_tokens, u.estimated) == (120, 9, 100, False)
    body = fake.requests[-1].body
    assert body["stream"] is True
    if vendor.cls is OpenAIProvider:
        assert body["stream_options"] == {"include_usage": True}


def test_streamed_tool_call_arguments_are_assembled(vendor, fake):
    args_one = {"a": 1, "b": 2, "note": "a longish string split over many chunks"}
    args_two = {"a": 40, "b": 2}
    fake.script([FakeReply(tool_calls=[("add", args_one), ("add", args_two)], model="m-2025")])
    response, seen = stream(vendor, fake, ask("add", tools=[ADD]))
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("add", args_one), ("add", args_two)]
    assert len({c.id for c in response.tool_calls}) == 2 and all(response.tool_calls[0].id)
    assert response.finish_reason == vendor.tool_finish and response.text == ""
    assert response.model == "m-2025"
    fragments = [d for _, d in seen if d.kind == "tool_call"]
    assert len(fragments) > 2 and {d.tool for d in fragments} == {"add"}
    assert "".join(d.text for d in fragments) == json.dumps(args_one) + json.dumps(args_two)


def test_malformed_streamed_arguments_are_kept_raw(vendor, fake):
    fake.script([FakeReply(tool_calls=[("add", '{"a": 1,')])])
    response, _ = stream(vendor, fake, ask(tools=[ADD]))
    assert response.tool_calls[0].arguments == {"_raw": '{"a": 1,'}


@pytest.mark.parametrize(("kind", "message"), [
    ("cut", "connection dropped mid-stream after 3 chunks"),
    ("truncate", "stream ended before its final event after 3 chunks"),
])
def test_a_stream_that_breaks_off_is_a_retryable_provider_error(vendor, fake, kind, message):
    fake.script(["one two three four five six"])
    fake.fail_next(1, kind, cut_after=3)
    with pytest.raises(ProviderError, match=message) as info:
        stream(vendor, fake)
    err = info.value
    assert err.retryable and err.status is None and err.model == "m"
    assert fake.requests[-1].fault == kind


@pytest.mark.parametrize("kind", ["cut", "truncate"])
def test_a_stream_missing_only_its_final_event_is_still_an_error(vendor, fake, kind):
    # Everything but the final event: OpenAI's finish_reason chunk, Anthropic's message_stop
    # (its message_delta with the stop reason and usage has arrived).
    fake.fail_next(1, kind, cut_after=10_000)
    with pytest.raises(ProviderError, match=r"after [1-9][0-9]* chunks") as info:
        stream(vendor, fake)
    assert info.value.retryable


def test_a_stalled_stream_is_a_call_timeout(vendor, fake):
    fake.chunk_delay = 5.0
    with pytest.raises(CallTimeoutError, match=r"no further chunk within 0\.2s \(after 1 chunks\)"):
        stream(vendor, fake, ask(timeout=10, idle_timeout=0.2))


def test_a_stream_slower_than_the_timeout_is_a_call_timeout(vendor, fake):
    fake.chunk_delay = 0.1
    fake.script([" ".join(["word"] * 40)])
    with pytest.raises(CallTimeoutError, match=r"did not finish streaming within 0\.5s"):
        stream(vendor, fake, ask(timeout=0.5))


def test_errors_before_the_first_chunk_map_as_for_plain_calls(vendor, fake):
    fake.fail_next(1, "429", retry_after=0.01)
    with pytest.raises(ProviderError) as info:
        stream(vendor, fake)
    assert (info.value.status, info.value.retryable, info.value.retry_after) == (429, True, 0.01)


def test_an_on_delta_error_propagates_unchanged(vendor, fake):
    provider = vendor.cls(api_key="sk-test", base_url=getattr(fake, vendor.url_attr))

    def boom(delta: StreamDelta) -> None:
        raise KeyError("consumer bug")

    with pytest.raises(KeyError, match="consumer bug"):
        asyncio.run(provider.request("m", ask(), boom))
    # The connection was released: the provider still works.
    assert asyncio.run(provider.request("m", ask("again"))).text == "fake reply to: again"


def test_sim_streams_word_sized_deltas_and_tool_calls():
    SimModel("stream_words", default="offline demos stream too", latency=0.05).register()
    seen: list[StreamDelta] = []
    r = asyncio.run(SimProvider().request("stream_words", ask(), seen.append))
    assert [d.text for d in seen] == ["offline ", "demos ", "stream ", "too"]
    assert r.text == "offline demos stream too" and r.simulated
    SimModel("stream_tool", default={"tool": "add", "args": {"a": 1}}).register()
    seen.clear()
    r = asyncio.run(SimProvider().request("stream_tool", ask(), seen.append))
    assert seen == [StreamDelta('{"a": 1}', "tool_call", "add")]
    assert r.tool_calls[0].arguments == {"a": 1}


def test_sim_spreads_its_latency_over_the_deltas():
    SimModel("stream_slow", default="a b c d", latency=0.4).register()
    times: list[float] = []
    started = time.perf_counter()
    asyncio.run(SimProvider().request("stream_slow", ask(), lambda d: times.append(
        time.perf_counter())))
    ended = time.perf_counter()
    assert len(times) == 4
    # Deltas come spread out, not all at the end after one sleep.
    assert started < times[0] < times[1] < times[2] < times[3] <= ended
    assert times[0] - started < ended - times[0]


def test_sim_stream_times_out_before_consuming_its_script():
    m = SimModel("stream_late", replies=["first", "second"], latency=0.3).register()
    with pytest.raises(CallTimeoutError, match=r"within 0\.05s"):
        asyncio.run(SimProvider().request("stream_late", ask(timeout=0.05), lambda d: None))
    assert asyncio.run(SimProvider().request("stream_late", ask())).text == "first"
    m.reset()


def test_an_error_event_mid_stream_is_a_retryable_provider_error(vendor, fake):
    fake.script(["one two three four"])
    fake.fail_next(1, "stream_error", cut_after=3)
    message = r"error mid-stream after 3 chunks: \w+_error: Overloaded"
    with pytest.raises(ProviderError, match=message) as info:
        stream(vendor, fake)
    assert info.value.retryable and info.value.status is None
