"""One small offline pipeline of each pattern, for checks that every exported span carries
OpenInference's kind, input and output (not collected: no test_ prefix)."""

from __future__ import annotations

import itertools
from typing import Any

from orchnb import Agent, Chain, FunctionStep, MapReduce, PlanExecute, Router, Step, Team
from orchnb.models import SimModel


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _scripted(name: str, *replies: str) -> str:
    it = itertools.cycle(replies)
    SimModel(name, fn=lambda r: next(it)).register()
    return f"sim:{name}"


def every_pattern() -> list[tuple[Any, Any]]:
    """(pipeline, input) pairs: a chain holding an agent with a tool, a router, a map-reduce,
    a plan-execute and a team."""
    SimModel("oi_calc", fn=Agent.sim_policy([("add", {"a": 2, "b": 3})], "It is {observation}.")
             ).register()
    agent = Agent("calc", "sim:oi_calc", [add])
    classify = Step("classify", _scripted("oi_clf", "billing"), "Label: {{ input }}")
    router = Router("triage", classify,
                    {"billing": Step("bill", "sim:echo", "Bill: {{ input }}"),
                     "other": Step("misc", "sim:echo", "Misc: {{ input }}")}, default="other")
    digest = MapReduce("digest", Step("map", "sim:echo", "Note: {{ input }}"),
                       Step("reduce", "sim:echo", "Join: {{ input }}"))
    planned = PlanExecute("planned", _scripted("oi_plan", '["search", "summarize"]'),
                          FunctionStep("do", lambda step, vars: f"did {step}"))
    team = Team("team", _scripted("oi_boss", "math: add 2 and 3", "FINISH: 5"),
                {"math": agent, "writer": Step("writer", "sim:echo", "Write: {{ workspace }}")})
    desk = Chain("desk", [Step("summarize", "sim:echo", "Summarize: {{ input }}"), agent])
    return [(desk, "add 2 and 3"), (router, "charged twice"), (digest, ["a", "b", "c"]),
            (planned, "a brief"), (team, "2+3?")]
