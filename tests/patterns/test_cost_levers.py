"""Cost levers as step options: cache_prompt and service_tier on steps, agents and pipelines,
validated where written, in YAML both ways, and shown by the preview."""

from __future__ import annotations

import pytest

import orchnb
from orchnb import Agent, Chain, Step
from orchnb.exceptions import SpecError
from orchnb.models import Message, ModelRequest, ToolSpec
from orchnb.models._anthropic import to_anthropic
from orchnb.models._openai import to_openai

LONG = "Policy clause. " * 1500


def test_cache_prompt_and_service_tier_round_trip_through_yaml():
    chain = Chain("c", [
        Step("a", "openai:gpt-5-mini", "{{ input }}", cache_prompt="1h", service_tier="flex"),
        Step("b", "anthropic:claude-haiku-4-5", "{{ input }}", cache_prompt=True),
    ], service_tier="priority")
    text = chain.to_yaml()
    assert "cache_prompt: 1h" in text and "cache_prompt: true" in text
    again = orchnb.from_yaml(text)
    a, b = again.steps
    assert (a.cache_prompt, a.service_tier, b.cache_prompt) == ("1h", "flex", "5m")
    assert again.options.service_tier == "priority" and again.to_yaml() == text


def test_agent_cache_prompt_in_yaml():
    text = """
pattern: agent
name: helper
model: anthropic:claude-haiku-4-5
system: be brief
cache_prompt: 1h
"""
    agent = orchnb.from_yaml(text)
    assert agent.cache_prompt == "1h" and "cache_prompt: 1h" in agent.to_yaml()


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"cache_prompt": "2h"}, "not a cache lifetime"),
    ({"service_tier": "cheap"}, "not a service tier"),
])
def test_bad_lever_values_are_refused_where_written(kwargs, words):
    with pytest.raises(SpecError, match=words):
        Step("a", "openai:gpt-4o-mini", "x", **kwargs)


def test_a_tier_on_a_provider_without_tiers_is_refused_with_what_to_do():
    with pytest.raises(SpecError, match=r"has no service tiers.*use an openai: model"):
        Step("a", "anthropic:claude-haiku-4-5", "x", service_tier="flex")
    with pytest.raises(SpecError, match="has no service tiers"):
        Agent("g", "sim:echo", service_tier="flex")
    with pytest.raises(SpecError, match="service_tier"):
        orchnb.from_yaml("pattern: chain\nsteps:\n- model: openai:gpt-4o\n  prompt: x\n"
                         "  service_tier: cheap\n")


def test_anthropic_marks_system_last_tool_and_the_conversation_so_far():
    tools = [ToolSpec("a", "A", {"type": "object"}), ToolSpec("b", "B", {"type": "object"})]
    msgs = [Message("system", "rules"), Message("user", "q1"), Message("assistant", "a1"),
            Message("user", "q2")]
    p = to_anthropic(ModelRequest(msgs, tools, cache_prompt="1h"))
    mark = {"type": "ephemeral", "ttl": "1h"}
    assert p["system"][0]["cache_control"] == mark
    assert p["tools"][-1]["cache_control"] == mark and "cache_control" not in p["tools"][0]
    assert p["messages"][1]["content"][-1]["cache_control"] == mark  # a1: before the new turn
    assert p["messages"][2] == {"role": "user", "content": "q2"}
    assert "cache_control" not in str(to_anthropic(ModelRequest(msgs, tools)))


def test_openai_puts_the_system_prompt_first_and_keys_the_prefix():
    msgs = [Message("user", "q"), Message("system", "rules")]
    p = to_openai(ModelRequest(msgs, cache_prompt="5m", service_tier="flex"))
    assert [m["role"] for m in p["messages"]] == ["system", "user"]
    assert p["prompt_cache_key"] == to_openai(ModelRequest(
        [Message("system", "rules"), Message("user", "other")], cache_prompt="5m")
    )["prompt_cache_key"]
    assert p["service_tier"] == "flex"
    assert [m["role"] for m in to_openai(ModelRequest(msgs))["messages"]] == ["user", "system"]


def test_preview_says_what_is_cacheable_against_the_minimum():
    chain = Chain("c", [
        Step("long", "anthropic:claude-haiku-4-5", "{{ input }}", system=LONG, cache_prompt=True),
        Step("short", "openai:gpt-4o-mini", "{{ input }}", system="be brief"),
        Step("unasked", "anthropic:claude-sonnet-4-5", "{{ input }}", system=LONG),
    ])
    df = chain.preview("x").df.set_index("step")
    assert df.loc["long", "cacheable"] == "system"
    assert df.loc["long", "cacheable_tokens"] > 4096 == df.loc["long", "cache_min_tokens"]
    assert "cached from the second call" in df.loc["long", "note"]
    assert df.loc["short", "cache_min_tokens"] == 1024
    assert "too short, not cached" in df.loc["short", "note"]
    assert "set cache_prompt=True" in df.loc["unasked", "note"]
