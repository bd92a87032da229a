"""ModelRequest.output_schema on the wire: OpenAI response_format, Anthropic forced tool use."""

from __future__ import annotations

import asyncio
import json

import pytest

from orchnb.engine._cache import cache_key
from orchnb.models import Message, ModelRequest, StreamDelta, ToolSpec
from orchnb.models._anthropic import AnthropicProvider, to_anthropic
from orchnb.models._openai import OpenAIProvider, response_format, to_openai
from orchnb.testing import FakeReply

PET = {"type": "object", "properties": {"name": {"type": "string"},
                                        "legs": {"type": "integer"}},
       "required": ["name", "legs"]}
TAGS = {"type": "array", "items": {"type": "string"}}
ADD = ToolSpec("add", "Add.", {"type": "object", "properties": {"a": {"type": "integer"}}})


def ask(schema=PET, name="Pet", **kw) -> ModelRequest:
    return ModelRequest([Message("user", "a cat")], output_schema=schema, output_name=name, **kw)


def openai(fake) -> OpenAIProvider:
    return OpenAIProvider(api_key="sk-test", base_url=fake.openai_base_url)


def anthropic(fake) -> AnthropicProvider:
    return AnthropicProvider(api_key="sk-ant-test", base_url=fake.anthropic_base_url)


def test_no_schema_sends_nothing_new():
    plain = ModelRequest([Message("user", "hi")])
    assert "response_format" not in to_openai(plain)
    assert "tool_choice" not in to_anthropic(plain)


def test_response_format_is_strict_only_when_the_schema_allows():
    strict = response_format("My Pet!", PET)
    assert strict["json_schema"]["name"] == "My_Pet_"
    assert strict["json_schema"]["strict"] is True
    assert strict["json_schema"]["schema"]["additionalProperties"] is False
    assert PET.get("additionalProperties") is None  # the caller's schema is not changed
    loose = response_format("Pet", {**PET, "required": ["name"]})
    assert loose["json_schema"]["strict"] is False
    nested = {"type": "object", "properties": {"pets": {"type": "array", "items": PET}},
              "required": ["pets"]}
    sent = response_format("Pets", nested)["json_schema"]
    assert sent["strict"] is True
    assert sent["schema"]["properties"]["pets"]["items"]["additionalProperties"] is False


def test_openai_structured_answer_over_the_sdk(fake):
    fake.script([{"name": "Tom", "legs": 4}])
    resp = asyncio.run(openai(fake).request("gpt-4o-mini", ask()))
    assert json.loads(resp.text) == {"name": "Tom", "legs": 4}
    [req] = fake.requests
    assert (req.output_name, req.output_via) == ("Pet", "response_format")
    assert req.output_schema["required"] == ["name", "legs"]


def test_anthropic_forced_tool_answer_comes_back_as_text(fake):
    fake.script([{"name": "Tom", "legs": 4}])
    resp = asyncio.run(anthropic(fake).request("claude-haiku-4-5", ask()))
    assert json.loads(resp.text) == {"name": "Tom", "legs": 4}
    assert resp.tool_calls == [] and resp.finish_reason == "end_turn"
    body = fake.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "Pet"}
    assert body["tools"][-1]["input_schema"] == PET


def test_anthropic_wraps_a_non_object_schema_and_unwraps_the_answer(fake):
    fake.script([["a", "b"]])
    resp = asyncio.run(anthropic(fake).request("c", ask(TAGS, "Tags")))
    assert json.loads(resp.text) == ["a", "b"]
    sent = fake.requests[0].body["tools"][-1]["input_schema"]
    assert sent["properties"]["value"] == TAGS


def test_anthropic_with_tools_must_call_one_and_real_tool_calls_stay_calls(fake):
    fake.script([FakeReply(tool_calls=[("add", {"a": 1})])])
    resp = asyncio.run(anthropic(fake).request("c", ask(tools=[ADD])))
    assert [c.name for c in resp.tool_calls] == ["add"] and resp.text == ""
    body = fake.requests[0].body
    assert body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in body["tools"]] == ["add", "Pet"]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_streamed_structured_answer_arrives_as_text_deltas(fake, api):
    fake.script([{"name": "Tom", "legs": 4}])
    deltas: list[StreamDelta] = []
    make = openai if api == "openai" else anthropic
    resp = asyncio.run(make(fake).request("m", ask(), deltas.append))
    assert json.loads(resp.text) == {"name": "Tom", "legs": 4}
    assert resp.tool_calls == []
    assert all(d.kind == "text" for d in deltas)
    assert json.loads("".join(d.text for d in deltas)) == {"name": "Tom", "legs": 4}


def test_cache_key_includes_the_schema_and_is_unchanged_without_one():
    plain = ModelRequest([Message("user", "a cat")])
    assert cache_key("p", "m", plain) == cache_key("p", "m", ModelRequest([Message("user",
                                                                                    "a cat")]))
    keys = {cache_key("p", "m", r) for r in (plain, ask(), ask(TAGS, "Tags"), ask(name="B"))}
    assert len(keys) == 4


def test_sim_answers_json_and_declares_no_native_structured_output():
    from orchnb.models import SimModel, SimProvider

    SimModel("json_sim", default={"json": {"name": "Tom", "legs": 4}}).register()
    resp = asyncio.run(SimProvider().request("json_sim", ask()))
    assert json.loads(resp.text) == {"name": "Tom", "legs": 4} and resp.simulated
    assert SimProvider.capabilities.structured_output is False
