"""AnthropicProvider through the real ``anthropic`` SDK over loopback HTTP to FakeProvider."""

from __future__ import annotations

import asyncio

import pytest

from orchnb.exceptions import ProviderError
from orchnb.models import Message, ModelRequest, ToolCall, ToolSpec
from orchnb.models._anthropic import DEFAULT_MAX_TOKENS, AnthropicProvider
from orchnb.testing import FakeReply

ADD = ToolSpec("add", "Add two integers.", {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
})


def ask(text: str = "hi", **kw) -> ModelRequest:
    return ModelRequest([Message("user", text)], **kw)


def provider(fake, **kw) -> AnthropicProvider:
    return AnthropicProvider(api_key=kw.pop("api_key", "sk-ant-test"),
                             base_url=fake.anthropic_base_url, **kw)


def test_text_reply_is_normalised(fake):
    resp = asyncio.run(provider(fake).request("claude-haiku-4-5", ask("hello")))
    assert resp.text == "fake reply to: hello"
    assert resp.model == "claude-haiku-4-5"
    assert resp.finish_reason == "end_turn"
    assert resp.tool_calls == [] and resp.simulated is False
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0


def test_cache_reads_are_added_to_input_and_reported_as_cached(fake):
    fake.script([FakeReply(text="x", input_tokens=120, output_tokens=9, cached_tokens=100)])
    usage = asyncio.run(provider(fake).request("c", ask())).usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (120, 9, 100)


def test_system_goes_to_the_system_parameter_and_max_tokens_defaults(fake):
    msgs = [Message("system", "be brief"), Message("user", "hi")]
    asyncio.run(provider(fake).request("c", ModelRequest(msgs)))
    body = fake.requests[-1].body
    assert body["system"] == "be brief"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS == 1024
    assert "temperature" not in body


def test_temperature_and_max_tokens_are_sent(fake):
    asyncio.run(provider(fake).request("c", ask(temperature=0.0, max_tokens=64)))
    body = fake.requests[-1].body
    assert body["temperature"] == 0.0 and body["max_tokens"] == 64


def test_tool_use_round_trip_is_well_formed(fake):
    fake.script([FakeReply(text="adding", tool_calls=[("add", {"a": 1, "b": 2})]), "3"])
    p = provider(fake)
    first = asyncio.run(p.request("c", ask("add 1 and 2", tools=[ADD])))
    assert first.finish_reason == "tool_use" and first.text == "adding"
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("add", {"a": 1, "b": 2})

    history = [
        Message("system", "use tools"),
        Message("user", "add 1 and 2"),
        Message("assistant", "adding", tool_calls=[call]),
        Message("tool", "3", tool_call_id=call.id, name="add"),
    ]
    assert asyncio.run(p.request("c", ModelRequest(history, tools=[ADD]))).text == "3"

    body = fake.requests[-1].body
    assert body["tools"] == [
        {"name": "add", "description": "Add two integers.", "input_schema": ADD.parameters}]
    assert body["system"] == "use tools"
    assert body["messages"] == [
        {"role": "user", "content": "add 1 and 2"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "adding"},
            {"type": "tool_use", "id": call.id, "name": "add", "input": {"a": 1, "b": 2}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "3"}]},
    ]
    assert fake.requests[-1].messages[-1] == {
        "role": "tool", "content": "3", "tool_call_id": call.id}


def test_parallel_tool_results_merge_into_one_user_message(fake):
    calls = [ToolCall("t1", "add", {"a": 1, "b": 1}), ToolCall("t2", "add", {"a": 2, "b": 2})]
    msgs = [
        Message("user", "two sums"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", "2", tool_call_id="t1"),
        Message("tool", "4", tool_call_id="t2"),
        Message("user", "and now?"),
    ]
    asyncio.run(provider(fake).request("c", ModelRequest(msgs)))
    sent = fake.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == [
        {"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1, "b": 1}},
        {"type": "tool_use", "id": "t2", "name": "add", "input": {"a": 2, "b": 2}}]
    assert sent[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "2"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "4"},
        {"type": "text", "text": "and now?"}]


@pytest.mark.parametrize(
    ("kind", "status", "retryable", "retry_after"),
    [
        ("429", 429, True, 0.01),
        ("500", 500, True, None),
        ("503", 503, True, 0.01),
        ("529", 529, True, 0.01),
        ("400", 400, False, None),
        ("malformed", None, True, None),
        ("drop", None, True, None),
    ],
)
def test_faults_become_provider_errors(fake, kind, status, retryable, retry_after):
    fake.fail_next(1, kind, retry_after=0.01)
    with pytest.raises(ProviderError) as info:
        asyncio.run(provider(fake).request("claude-x", ask()))
    err = info.value
    assert (err.status, err.retryable, err.retry_after) == (status, retryable, retry_after)
    assert (err.provider, err.model) == ("anthropic", "claude-x")


def test_overloaded_error_names_its_type(fake):
    fake.fail_next(1, "503", retry_after=0.5)
    with pytest.raises(ProviderError, match="overloaded_error") as info:
        asyncio.run(provider(fake).request("c", ask()))
    assert info.value.retry_after == 0.5










def test_works_across_event_loops(fake):
    p = provider(fake)
    for _ in range(3):
        assert asyncio.run(p.request("c", ask())).text == "fake reply to: hi"
    assert len(p._clients) == 1


def test_registry_builds_the_anthropic_provider(fake):
    from orchnb.models import resolve_model

    model = resolve_model("anthropic:claude-haiku-4-5", base_url=fake.anthropic_base_url,
                          api_key="k")
    assert isinstance(model.provider, AnthropicProvider)
    assert asyncio.run(model.provider.request(model.name, ask())).model == "claude-haiku-4-5"
