"""Built-in tools inside agents and teams, from Python and by name in YAML."""

from __future__ import annotations

import pytest

from orchnb import Agent
from orchnb.exceptions import SpecError
from orchnb.patterns import from_yaml
from orchnb.testing import FakeReply
from orchnb.tools import calculator, http_get


def test_agent_uses_the_calculator_over_the_openai_sdk(fake_env):
    fake_env.script([FakeReply(tool_calls=[("calculator", {"expression": "17 * 23"})]),
                     "It is 391."])
    run = Agent("math", "openai:gpt-4o-mini", [calculator])("17 times 23?")
    assert run.output == "It is 391."
    tool_result = [m for m in fake_env.requests[1].messages if m["role"] == "tool"]
    assert tool_result[0]["content"] == "391"


def test_refused_http_get_is_an_observation_for_the_agent(fake_env):
    fake_env.script([FakeReply(tool_calls=[("http_get", {"url": "http://evil.example/x"})]),
                     "I may not fetch that."])
    run = Agent("web", "anthropic:claude-haiku-4-5", [http_get(allow=["docs.python.org"])])(
        "fetch evil")
    assert run.status == "ok" and run.output == "I may not fetch that."
    [observed] = [m for m in fake_env.requests[1].messages if m["role"] == "tool"]
    assert "not on the allowlist" in observed["content"]
    tool_span = next(s for s in run.trace.spans if s.kind == "tool")
    assert tool_span.status == "error" and "evil.example" in tool_span.error


def test_yaml_names_built_in_tools(tmp_path, fake_env):
    (tmp_path / "faq.md").write_text("Refunds are paid within 14 days.")
    fake_env.script([
        FakeReply(tool_calls=[("doc_search", {"query": "refunds"}),
                              ("calculator", {"expression": "14 * 24"})]),
        "14 days, 336 hours."])
    pipe = from_yaml(f"""
pattern: agent
model: openai:gpt-4o-mini
tools:
  - calculator
  - doc_search: {{paths: ["{tmp_path}"], k: 1}}
  - http_get: {{allow: [docs.python.org]}}
""")
    assert sorted(pipe.tools) == ["calculator", "doc_search", "http_get"]
    run = pipe("how long do refunds take, in hours?")
    assert run.output == "14 days, 336 hours."
    observed = [m["content"] for m in fake_env.requests[1].messages if m["role"] == "tool"]
    assert "14 days" in observed[0] and observed[1] == "336"


def test_a_notebook_function_named_like_a_built_in_wins():
    def calculator(expression: str) -> str:
        """Mine."""
        return "mine"

    pipe = from_yaml("pattern: agent\nmodel: 'sim:echo'\ntools: [calculator]\n",
                     namespace={"calculator": calculator})
    assert pipe.tools["calculator"].description == "Mine."


@pytest.mark.parametrize(("tools", "message"), [
    ("[{http_get: {allow: []}}]", r"line 3, key 'tools\[0\]\.http_get\.allow'.*names no host"),
    ("[{http_get: {}}]", r"http_get: .*allow"),
    ("[{web_search: {}}]", "unknown built-in tool 'web_search'"),
    ("[{doc_search: [a]}]", "must be a mapping"),
])
def test_yaml_built_in_mistakes_fail_before_any_call(tools, message):
    with pytest.raises(SpecError, match=message):
        from_yaml(f"pattern: agent\nmodel: 'sim:echo'\ntools: {tools}\n")


def test_team_member_agent_with_built_ins(tmp_path):
    from orchnb.models import SimModel

    (tmp_path / "notes.txt").write_text("The launch is on Tuesday.")
    SimModel("boss_b", replies=["researcher: find the launch day", "FINISH: Tuesday"]).register()
    policy = Agent.sim_policy([("doc_search", {"query": "launch"})], "Found: {observation}")
    SimModel("res_b", fn=policy).register()
    pipe = from_yaml(f"""
pattern: team
supervisor: {{model: "sim:boss_b"}}
agents:
  researcher:
    pattern: agent
    model: "sim:res_b"
    tools: [{{doc_search: {{paths: ["{tmp_path}"]}}}}, calculator]
""")
    run = pipe("when is the launch?")
    assert run.output == "Tuesday"
    tool_span = next(s for s in run.trace.spans if s.kind == "tool")
    assert "Tuesday" in tool_span.output
