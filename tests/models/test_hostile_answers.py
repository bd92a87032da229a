"""Hostile answers through the real ``openai`` and ``anthropic`` SDKs: a body that is not
UTF-8 is a retryable ProviderError, surrogates and NULs are text, and a reply without usage
gets an estimate from the text, flagged, never 0 tokens."""

from __future__ import annotations

import asyncio

import pytest

from orchnb.exceptions import ProviderError
from orchnb.models import Message, ModelRequest, ToolSpec, Usage, complete_usage
from orchnb.models._anthropic import AnthropicProvider
from orchnb.models._openai import OpenAIProvider
from orchnb.testing import FakeReply

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
PROMPT = "Summarize this contract in one line: " + "clause " * 50


def call(fake, api: str, stream: bool, request: ModelRequest | None = None):
    provider = (OpenAIProvider(api_key="sk-fake", base_url=fake.openai_base_url)
                if api == "openai" else
                AnthropicProvider(api_key="sk-ant-fake", base_url=fake.anthropic_base_url))
    request = request or ModelRequest([Message("user", PROMPT)], timeout=5)
    deltas: list[str] = []
    on_delta = (lambda d: deltas.append(d.text)) if stream else None
    response = asyncio.run(provider.request(MODELS[api], request, on_delta=on_delta))
    return response, deltas


BOTH = pytest.mark.parametrize("api", ["openai", "anthropic"])
STREAMED = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


@BOTH
@STREAMED
def test_a_body_that_is_not_utf8_is_a_retryable_provider_error(fake, api, stream):
    fake.fail_next(1, "bad_utf8", cut_after=2)
    with pytest.raises(ProviderError) as info:
        call(fake, api, stream)
    e = info.value
    assert e.retryable and e.status is None
    assert "not valid UTF-8" in str(e) and f"{api}:{MODELS[api]}" in str(e)
    assert not isinstance(e.__cause__, ProviderError)
    response, _ = call(fake, api, stream)  # the next, clean answer goes through
    assert response.text


@BOTH
@STREAMED
def test_lone_surrogates_and_nuls_in_a_reply_are_text(fake, api, stream):
    fake.script([FakeReply(text="bad \ud800 and nul \x00 end")])
    response, deltas = call(fake, api, stream)
    assert response.text == "bad \ud800 and nul \x00 end"
    if stream:
        assert "".join(deltas) == response.text


@BOTH
@STREAMED
def test_a_reply_without_usage_gets_an_estimate_from_the_text(fake, api, stream):
    fake.script([FakeReply(text="x" * 400)])
    reported, _ = call(fake, api, stream)
    assert not reported.usage.estimated
    fake.send_usage = False
    fake.script([FakeReply(text="x" * 400)])
    response, _ = call(fake, api, stream)
    u = response.usage
    assert u.estimated
    assert u.output_tokens == 100  # four characters a token
    # the estimate is near what the server counts (same rule, its own message framing)
    assert abs(u.input_tokens - reported.usage.input_tokens) <= 10
    assert u.input_tokens > len(PROMPT) // 5


@BOTH
def test_a_tool_call_without_usage_counts_its_arguments(fake, api):
    fake.send_usage = False
    fake.script([FakeReply(tool_calls=[("add", {"a": 1, "b": 2})])])
    tool = ToolSpec("add", "Add two integers.", {"type": "object", "properties": {
        "a": {"type": "integer"}, "b": {"type": "integer"}}})
    request = ModelRequest([Message("user", "1+2?")], tools=[tool], timeout=5)
    response, _ = call(fake, api, False, request)
    assert response.tool_calls and response.usage.estimated
    assert response.usage.output_tokens > 0
    assert response.usage.input_tokens > 25  # the tool definition is counted


def test_complete_usage_fills_only_what_is_missing():
    request = ModelRequest([Message("user", "a" * 40)])
    assert complete_usage(Usage(12, 3), request, "abc") == Usage(12, 3)
    assert complete_usage(Usage(12, 0), request, "") == Usage(12, 0)  # an empty reply
    half = complete_usage(Usage(0, 7, 0), request, "abcd")  # a server sending zeros
    assert half == Usage(13, 7, 0, estimated=True)
    assert complete_usage(None, request, "abcd" * 10) == Usage(13, 10, 0, estimated=True)


def test_embeddings_without_usage_are_estimated(fake):
    vector = [0.6, 0.8]
    fake.fail_next(1, "200", body={"object": "list", "model": "e", "data": [
        {"object": "embedding", "index": 0, "embedding": vector}]})
    provider = OpenAIProvider(api_key="sk-fake", base_url=fake.openai_base_url)
    vectors, usage = asyncio.run(provider.embed("text-embedding-3-small", ["abcdefgh"]))
    assert vectors == [vector] and usage == Usage(2, 0, 0, estimated=True)
