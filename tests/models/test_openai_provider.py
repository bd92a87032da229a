"""OpenAIProvider through the real ``openai`` SDK over loopback HTTP to FakeProvider."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from orchnb.exceptions import ProviderError
from orchnb.models import Message, ModelRequest, ToolCall, ToolSpec
from orchnb.models._openai import OpenAIProvider
from orchnb.testing import EMBEDDING_DIM, FakeReply

ADD = ToolSpec("add", "Add two integers.", {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
})


def ask(text: str = "hi", **kw) -> ModelRequest:
    return ModelRequest([Message("user", text)], **kw)


def provider(fake, **kw) -> OpenAIProvider:
    return OpenAIProvider(api_key=kw.pop("api_key", "sk-test"), base_url=fake.openai_base_url, **kw)


def test_text_reply_is_normalised(fake):
    resp = asyncio.run(provider(fake).request("gpt-4o-mini", ask("hello")))
    assert resp.text == "fake reply to: hello"
    assert resp.model == "gpt-4o-mini"
    assert resp.finish_reason == "stop"
    assert resp.tool_calls == [] and resp.simulated is False
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0


def test_usage_includes_cached_tokens(fake):
    fake.script([FakeReply(text="x", input_tokens=120, output_tokens=9, cached_tokens=100)])
    usage = asyncio.run(provider(fake).request("m", ask())).usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (120, 9, 100)
    assert usage.estimated is False


def test_tool_call_round_trip_is_well_formed(fake):
    fake.script([FakeReply(tool_calls=[("add", {"a": 1, "b": 2})]), "3"])
    p = provider(fake)
    first = asyncio.run(p.request("m", ask("add 1 and 2", tools=[ADD])))
    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("add", {"a": 1, "b": 2})

    history = [
        Message("system", "use tools"),
        Message("user", "add 1 and 2"),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "3", tool_call_id=call.id, name="add"),
    ]
    second = asyncio.run(p.request("m", ModelRequest(history, tools=[ADD])))
    assert second.text == "3"

    body = fake.requests[-1].body
    assert body["tools"] == [{"type": "function", "function": {
        "name": "add", "description": "Add two integers.", "parameters": ADD.parameters}}]
    sent = body["messages"]
    assert sent[0] == {"role": "system", "content": "use tools"}
    assert sent[2]["role"] == "assistant" and sent[2]["content"] is None
    assert sent[2]["tool_calls"] == [{"id": call.id, "type": "function", "function": {
        "name": "add", "arguments": json.dumps({"a": 1, "b": 2})}}]
    assert sent[3] == {"role": "tool", "tool_call_id": call.id, "content": "3"}
    assert fake.requests[-1].messages[3]["tool_call_id"] == call.id


def test_malformed_tool_arguments_are_kept_raw(fake):
    fake.script([FakeReply(tool_calls=[("add", '{"a": 1,')])])
    [call] = asyncio.run(provider(fake).request("m", ask(tools=[ADD]))).tool_calls
    assert call.arguments == {"_raw": '{"a": 1,'}


def test_temperature_and_max_tokens_are_sent(fake):
    asyncio.run(provider(fake).request("m", ask(temperature=0.2, max_tokens=50)))
    body = fake.requests[-1].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50
    asyncio.run(provider(fake).request("m", ask()))
    assert "temperature" not in fake.requests[-1].body


@pytest.mark.parametrize(
    ("kind", "status", "retryable", "retry_after"),
    [
        ("429", 429, True, 0.01),
        ("500", 500, True, None),
        ("503", 503, True, 0.01),
        ("400", 400, False, None),
        ("404", 404, False, None),
        ("malformed", None, True, None),
        ("drop", None, True, None),
    ],
)
def test_faults_become_provider_errors(fake, kind, status, retryable, retry_after):
    fake.fail_next(1, kind, retry_after=0.01)
    with pytest.raises(ProviderError) as info:
        asyncio.run(provider(fake).request("gpt-x", ask()))
    err = info.value
    assert (err.status, err.retryable, err.retry_after) == (status, retryable, retry_after)
    assert (err.provider, err.model) == ("openai", "gpt-x")
    assert "openai:gpt-x" in str(err)


def test_malformed_body_error_says_so(fake):
    fake.fail_next(1, "malformed")
    with pytest.raises(ProviderError, match="malformed body"):
        asyncio.run(provider(fake).request("m", ask()))


def test_retry_after_is_read_from_the_headers(fake):
    fake.fail_next(1, "429", retry_after=2.5)
    with pytest.raises(ProviderError) as info:
        asyncio.run(provider(fake).request("m", ask()))
    assert info.value.retry_after == 2.5 and "retry after 2.5s" in str(info.value)










def test_one_client_per_event_loop(fake):
    p = provider(fake)

    async def twice() -> None:
        await p.request("m", ask())
        await p.request("m", ask())

    asyncio.run(twice())
    asyncio.run(twice())  # a new loop: a new client, not the closed loop's one
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(p.request("m", ask())).text))
    thread.start()
    thread.join(10)
    assert result == ["fake reply to: hi"]
    assert len(p._clients) == 1  # the clients of closed loops were dropped


def test_concurrent_requests_share_the_loops_client(fake):
    p = provider(fake)

    async def main() -> list[str]:
        try:
            return [r.text for r in await asyncio.gather(
                *(p.request("m", ask(f"q{i}")) for i in range(50)))]
        finally:
            await p.aclose()

    assert asyncio.run(main()) == [f"fake reply to: q{i}" for i in range(50)]


def test_embed_returns_vectors_in_order_and_usage(fake):
    vectors, usage = asyncio.run(provider(fake).embed("text-embedding-3-small", ["a", "bb"]))
    assert len(vectors) == 2 and all(len(v) == EMBEDDING_DIM for v in vectors)
    again, _ = asyncio.run(provider(fake).embed("text-embedding-3-small", ["bb"]))
    assert again[0] == vectors[1]
    assert usage.input_tokens > 0
    assert fake.requests[-1].path == "/v1/embeddings"


def test_embed_errors_are_mapped(fake):
    fake.fail_next(1, "429", retry_after=0.01)
    with pytest.raises(ProviderError) as info:
        asyncio.run(provider(fake).embed("e", ["a"]))
    assert info.value.status == 429 and info.value.retryable


def test_registry_builds_the_openai_provider(fake):
    from orchnb.models import resolve_model

    model = resolve_model("openai:gpt-4o-mini", base_url=fake.openai_base_url, api_key="k")
    assert isinstance(model.provider, OpenAIProvider) and not model.simulated
    resp = asyncio.run(model.provider.request(model.name, ask()))
    assert resp.model == "gpt-4o-mini"


def test_assistant_text_with_tool_calls_keeps_its_text(fake):
    call = ToolCall("c1", "add", {"a": 1})
    msgs = [Message("user", "q"), Message("assistant", "thinking", tool_calls=[call]),
            Message("tool", "1", tool_call_id="c1")]
    asyncio.run(provider(fake).request("m", ModelRequest(msgs)))
    assert fake.requests[-1].body["messages"][1]["content"] == "thinking"
