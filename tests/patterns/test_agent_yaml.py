"""YAML (``%%orch`` bodies) for agent, plan_execute and team, and their errors."""

from __future__ import annotations

import pytest

from orchnb import Agent, PlanExecute, SpecError, Step, Team, TemplateError, UnknownModelError
from orchnb.models import SimModel
from orchnb.patterns import from_yaml


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.fixture
def ns():
    SimModel("y_calc", fn=Agent.sim_policy([("add", {"a": 2, "b": 3})], "It is {observation}.")
             ).register()
    SimModel("y_plan", default='["add 2 and 3"]').register()
    return {"add": add, "mul": mul, "limit": 3}


AGENT = """\
pattern: agent
model: sim:y_calc
system: You are careful.
tools: [add, mul]
max_iterations: 4
tool_mode: text
"""


def test_agent_from_yaml(ns):
    agent = from_yaml(AGENT, "calc", ns)
    assert isinstance(agent, Agent) and list(agent.tools) == ["add", "mul"]
    assert (agent.max_iterations, agent.tool_mode, agent.system.source) == (
        4, "text", "You are careful.")
    assert agent("2+3?", cache=False).output == "It is 5."
    assert agent.source == AGENT


def test_plan_execute_from_yaml_with_default_planner_prompt(ns):
    pe = from_yaml("""\
pattern: plan_execute
planner: {model: "sim:y_plan"}
executor:
  pattern: agent
  name: worker
  model: sim:y_calc
  tools: [add]
max_replans: 1
max_steps: 5
""", "pe", ns)
    assert isinstance(pe, PlanExecute) and pe.max_replans == 1 and pe.max_steps == 5
    assert "JSON list of steps" in pe.planner.prompt.source
    assert isinstance(pe.executor, Agent) and pe.executor.name == "worker"
    assert pe.replanner is not None and pe.replanner.model.id == "sim:y_plan"


def test_plan_execute_from_yaml_with_explicit_replanner(ns):
    SimModel("y_rp", default="FINAL ANSWER: 5").register()
    pe = from_yaml("""\
pattern: plan_execute
planner: {model: "sim:y_plan", prompt: "Plan: {{ task }}"}
executor: {model: "sim:echo", prompt: "Do {{ input }} for {{ task }}"}
replanner: {model: "sim:y_rp"}
max_replans: 2
""", "pe", ns)
    assert pe("sum", cache=False).output == "5"


def test_team_from_yaml_with_agent_shorthand(ns):
    SimModel("y_boss", replies=["math", "FINISH: done"]).register()
    team = from_yaml("""\
pattern: team
supervisor: {model: "sim:y_boss"}
agents:
  math: {model: "sim:y_calc", tools: [add]}
  writer: {model: "sim:echo", prompt: "Write: {{ workspace }}"}
  helper: add
max_turns: 4
""", "t", ns)
    assert isinstance(team, Team) and team.max_turns == 4
    assert list(team.members) == ["math", "writer", "helper"]
    assert isinstance(team.members["math"], Agent) and team.members["math"].name == "math"
    assert isinstance(team.members["writer"], Step)
    assert "{{ workspace }}" in team.supervisor.prompt.source
    assert team("x", cache=False).output == "done"


CASES = [
    ("pattern: agent\nmodel: sim:y_calc\ntools: [add, divide]\n", SpecError, 3, "tools[1]",
     ["'divide' is not defined", "add", "mul"]),
    ("pattern: agent\nmodel: sim:y_calc\ntools: [limit]\n", SpecError, 3, "tools[0]",
     ["not a function"]),
    ("pattern: agent\nmodel: sim:y_calc\ntool_mode: json\n", SpecError, 3, "tool_mode",
     ["native", "text", "auto"]),
    ("pattern: agent\nmodel: sim:y_calc\nmax_iterations: 0\n", SpecError, 3, "max_iterations",
     ["≥ 1"]),
    ("pattern: agent\nmodel: gpt-4o\n", UnknownModelError, 2, "model", ["provider:model"]),
    ("pattern: agent\nmodel: sim:y_calc\nprompt: '{{ question }}'\n", TemplateError, 3,
     "prompt", ["question"]),
    ("pattern: agent\nmodel: sim:y_calc\ntols: [add]\n", SpecError, 3, "tols",
     ["unknown key 'tols'", "tools"]),
    ("pattern: agent\ntools: [add]\n", SpecError, None, "model", ["'model' is required"]),
    ("pattern: plan_execute\nplanner: {model: sim:y_plan}\n", SpecError, None, "executor",
     ["'executor' is required"]),
    ("pattern: plan_execute\nplanner: {model: sim:y_plan}\nexecutor: {model: sim:echo}\n",
     SpecError, 3, "executor.prompt", ["'prompt' is required"]),
    ("pattern: plan_execute\nplanner: missing_fn\nexecutor: add\nmax_replans: 1\n", SpecError, 2,
     "planner", ["'missing_fn' is not defined"]),
    ("pattern: plan_execute\nplanner: add\nexecutor: add\nmax_replans: 1\n", SpecError, None,
     "replanner", ["needs a replanner"]),
    ("pattern: plan_execute\nplanner: {model: sim:y_plan, prompt: '{{ plans }}'}\nexecutor: add\n",
     TemplateError, 2, "planner.prompt", ["plans"]),
    ("pattern: team\nsupervisor: {model: sim:y_plan}\nagents: {}\n", SpecError, 3, "agents",
     ["no agents"]),
    ("pattern: team\nsupervisor: {model: sim:y_plan}\nagents:\n  a:\n    model: sim:y_calc\n"
     "    tools: [nope]\n", SpecError, 6, "agents.a.tools[0]", ["'nope' is not defined"]),
    ("pattern: team\nsupervisor: {model: sim:y_plan}\nagents:\n  a:\n    pattern: agent\n"
     "    model: sim:y_calc\n    max_iterations: -1\n", SpecError, 7,
     "agents.a.max_iterations", ["≥ 1"]),
    ("pattern: team\nsupervisor: {model: sim:y_plan}\nagents: {a: add}\nmax_turns: 0\n",
     SpecError, 4, "max_turns", ["max_turns"]),
    ("pattern: team\nsupervisor: {model: sim:y_plan, prompt: '{{ agnts }}'}\nagents: {a: add}\n",
     TemplateError, 2, "supervisor.prompt", ["agnts", "agents"]),
]


@pytest.mark.parametrize(("body", "error", "line", "key", "words"), CASES)
def test_bad_spec_names_line_and_key(ns, body, error, line, key, words):
    with pytest.raises(error) as info:
        from_yaml(body, "p", ns)
    e = info.value
    assert e.key == key, str(e)
    if line is not None:
        assert e.line == line, str(e)
    for word in words:
        assert word in str(e), str(e)
