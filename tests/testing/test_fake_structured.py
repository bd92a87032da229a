"""The fake server's structured output: dict replies, and what each request asked for."""

from __future__ import annotations

import json

import anthropic
import openai

from orchnb.testing import FakeReply

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
MSG = [{"role": "user", "content": "count"}]


def test_openai_response_format_is_recorded_and_a_dict_reply_is_the_content(fake):
    fake.script([{"n": 3}])
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-x", max_retries=0)
    out = client.chat.completions.create(model="m", messages=MSG, response_format={
        "type": "json_schema", "json_schema": {"name": "Count", "schema": SCHEMA}})
    assert json.loads(out.choices[0].message.content) == {"n": 3}
    req = fake.requests[0]
    assert (req.output_schema, req.output_name, req.output_via) == (
        SCHEMA, "Count", "response_format")


def test_anthropic_forced_tool_choice_gets_the_dict_as_tool_input(fake):
    fake.script([FakeReply(data={"n": 4})])
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=0)
    out = client.messages.create(
        model="m", max_tokens=50, messages=MSG,
        tools=[{"name": "Count", "input_schema": SCHEMA}],
        tool_choice={"type": "tool", "name": "Count"})
    [block] = out.content
    assert (block.type, block.name, block.input) == ("tool_use", "Count", {"n": 4})
    assert fake.requests[0].output_via == "tool_choice"


def test_anthropic_output_config_gets_the_dict_as_json_text(fake):
    fake.responder = lambda req: {"n": 5}
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=0)
    out = client.messages.create(model="m", max_tokens=50, messages=MSG, output_config={
        "format": {"type": "json_schema", "schema": SCHEMA}})
    assert json.loads(out.content[0].text) == {"n": 5}
    assert fake.requests[0].output_via == "output_config"


def test_a_dict_reply_without_a_schema_is_json_text(fake):
    fake.script([{"n": 6}])
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-x", max_retries=0)
    out = client.chat.completions.create(model="m", messages=MSG)
    assert json.loads(out.choices[0].message.content) == {"n": 6}
    assert fake.requests[0].output_schema is None
