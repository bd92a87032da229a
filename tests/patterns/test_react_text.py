"""The text ReAct protocol and the structured-reply parsers read messy model output."""

from __future__ import annotations

import pytest

from orchnb.models import Message, ModelRequest, ToolSpec
from orchnb.patterns._plans import (
    Final,
    PlanError,
    loose_json,
    parse_decision,
    parse_plan,
    parse_replan,
)
from orchnb.patterns._react_text import (
    Action,
    Answer,
    Invalid,
    parse_arguments,
    parse_react,
    react_instructions,
    sim_agent_policy,
    until_observation,
)

ADD = {"a": 1, "b": 2}


@pytest.mark.parametrize("text", [
    'Thought: add them\nAction: add\nAction Input: {"a": 1, "b": 2}',
    'thought: add them\naction: add\naction input: {"a": 1, "b": 2}',
    '**Thought:** add them\n**Action:** `add`\n**Action Input:**\n```json\n{"a": 1,\n "b": 2}\n```',
    'Thought: add them\nAction: add({"a": 1, "b": 2})',
    "Thought: add them\nAction: add\nAction Input: {'a': 1, 'b': 2,}",
    "Thought: add them\nAction: add\nAction Input: a=1, b=2",
    'Thought: add them\nAction: "add".\nAction Input: I will send {"a": 1, "b": 2} now',
])
def test_react_action_is_read_from_messy_text(text):
    assert parse_react(text) == Action("add", ADD, "add them")


def test_react_drops_a_hallucinated_observation_and_what_follows():
    text = 'Action: add\nAction Input: {"a": 1, "b": 2}\nObservation: 3\nFinal Answer: 3'
    assert parse_react(text) == Action("add", ADD)
    assert until_observation(text) == 'Action: add\nAction Input: {"a": 1, "b": 2}'


@pytest.mark.parametrize(("text", "answer"), [
    ("Thought: done\nFinal Answer: 42", "42"),
    ("**Final Answer:** 42", "42"),
    ("final answer: ```\n42\n```", "42"),
    ("Final Answer: 42\nAction: add", "42\nAction: add"),
    ("The answer is 42.", "The answer is 42."),
])
def test_react_final_answer(text, answer):
    result = parse_react(text)
    assert isinstance(result, Answer) and result.text == answer


@pytest.mark.parametrize("text", ["Thought: I am still thinking", "Action:\nAction Input: {}"])
def test_react_unreadable_turn_is_invalid_with_a_reason(text):
    result = parse_react(text)
    assert isinstance(result, Invalid) and result.problem


def test_bare_action_input_is_kept_as_text():
    assert parse_react("Action: search\nAction Input: weather in Paris").arguments == (
        "weather in Paris")
    assert parse_arguments('"quoted"') == "quoted"


def test_react_instructions_describe_tools_and_format():
    spec = ToolSpec("add", "Add two integers.", {"type": "object", "properties": {
        "a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a"]})
    text = react_instructions([spec])
    assert "- add: Add two integers." in text and '"b": integer (optional)' in text
    for label in ("Thought:", "Action:", "Action Input:", "Observation", "Final Answer:"):
        assert label in text


def test_sim_agent_policy_speaks_native_and_text():
    policy = sim_agent_policy([("add", ADD)], "It is {observation}.")
    spec = ToolSpec("add", "", {})
    native = [Message("user", "q")]
    assert policy(ModelRequest(native, [spec])) == {"tool": "add", "args": ADD}
    native.append(Message("tool", "3", tool_call_id="c1", name="add"))
    assert policy(ModelRequest(native, [spec])) == "It is 3."
    text = [Message("user", "q")]
    assert parse_react(policy(ModelRequest(text))) == Action("add", ADD, "I should use add.")
    text.append(Message("user", "Observation: 3"))
    assert parse_react(policy(ModelRequest(text))).text == "It is 3."


# -- plans, re-plans, supervisor decisions ------------------------------------------------------
@pytest.mark.parametrize("reply", [
    '["search", "summarize"]',
    'Here is my plan:\n```json\n["search", "summarize"]\n```\nGood luck!',
    '{"steps": ["search", "summarize"]}',
    '{"plan": [{"step": "search"}, {"description": "summarize"}]}',
    "1. search\n2) summarize",
    "Plan:\nStep 1: search\nStep 2: summarize",
    "- **search**\n- summarize",
    ["search", "summarize"],
    {"steps": ["search", "summarize"]},
])
def test_plan_parses_json_fences_and_lists(reply):
    assert parse_plan(reply) == ["search", "summarize"]


@pytest.mark.parametrize("reply", ["I cannot help with that.", "[]", '{"steps": []}', 42])
def test_unreadable_plan_raises_plan_error(reply):
    with pytest.raises(PlanError, match="JSON list of steps"):
        parse_plan(reply)


@pytest.mark.parametrize(("reply", "expected"), [
    ("FINAL ANSWER: 42", Final("42")),
    ("Final: 42", Final("42")),
    ("DONE", Final(None)),
    ('{"final_answer": "42"}', Final("42")),
    ('FINAL ANSWER: ["a"]', Final('["a"]')),
    ('["write it up"]', ["write it up"]),
    ('{"steps": []}', []),
    ("1. write it up", ["write it up"]),
])
def test_replan_is_a_final_answer_or_the_remaining_steps(reply, expected):
    assert parse_replan(reply) == expected


def test_unreadable_replan_says_what_was_expected():
    with pytest.raises(PlanError, match="FINAL ANSWER"):
        parse_replan("hmm, not sure")


def test_loose_json_finds_values_inside_prose():
    assert loose_json('so {"a": {"b": "}"}} it is') == {"a": {"b": "}"}}
    assert loose_json("nothing") is None


MEMBERS = ["researcher", "writer", "data_analyst"]


@pytest.mark.parametrize(("reply", "agent", "instruction"), [
    ("writer", "writer", ""),
    ("Writer.", "writer", ""),
    ("**researcher**: find three sources", "researcher", "find three sources"),
    ("Next: researcher - find sources", "researcher", "find sources"),
    ("I think the writer should go now", "writer", ""),
    ('{"next": "writer", "instruction": "polish"}', "writer", "polish"),
    ("Data Analyst: crunch the numbers", "data_analyst", "crunch the numbers"),
])
def test_supervisor_decision_names_a_member(reply, agent, instruction):
    d = parse_decision(reply, MEMBERS)
    assert (d.agent, d.instruction, d.done) == (agent, instruction, False)


@pytest.mark.parametrize(("reply", "answer"), [
    ("FINISH: 42", "42"), ("FINISH", None), ("done", None), ("DONE - all good", "all good"),
    ('{"next": "FINISH", "answer": "x"}', "x"), ("We are done here. FINAL ANSWER: 7", "7"),
])
def test_supervisor_decision_finish(reply, answer):
    d = parse_decision(reply, MEMBERS)
    assert d.done and d.answer == answer


def test_supervisor_decision_unreadable_explains_the_choices():
    d = parse_decision("let me think", MEMBERS)
    assert d.agent is None and not d.done
    assert "researcher, writer, data_analyst" in d.problem and "FINISH" in d.problem
