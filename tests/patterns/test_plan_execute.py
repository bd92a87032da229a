"""PlanExecute: structured plans, executors of any kind, re-planning, caps and failures."""

from __future__ import annotations

import json

import pytest
from _helpers import add, spans
from _helpers import scripted as planner

from orchnb import (
    Agent,
    Budget,
    BudgetExceeded,
    Chain,
    FunctionStep,
    MaxIterationsExceeded,
    PlanExecute,
    RunError,
    SpecError,
    Step,
)
from orchnb.models import SimModel, resolve_model
from orchnb.testing import FakeProvider, FakeReply


def test_plan_then_execute_each_step_in_order():
    got = []

    def do(step, vars):
        got.append((step, vars["task"], list(vars["plan"]), [h["step"] for h in vars["history"]]))
        return f"did {step}"

    pe = PlanExecute("pe", planner("pe_p1", '["search", "summarize"]'), FunctionStep("do", do))
    run = pe("write a brief", cache=False)
    assert (run.status, run.output) == ("ok", "did summarize")
    assert got == [("search", "write a brief", ["search", "summarize"], []),
                   ("summarize", "write a brief", ["search", "summarize"], ["search"])]
    [plan] = spans(run, "step", "plan")
    assert plan.iteration == 1 and plan.output == "1. search\n2. summarize"
    assert plan.meta == {"version": 1, "revised": False, "final": False,
                                     "steps": ["search", "summarize"]}
    execute = spans(run, "step", "execute")
    assert [(s.iteration, s.input, s.output) for s in execute] == [
        (1, "search", "did search"), (2, "summarize", "did summarize")]
    assert execute[1].meta == {"plan_version": 1, "plan_step": "summarize"}


def test_executor_prompt_sees_task_plan_history_and_input():
    seen = []
    SimModel("pe_exec", fn=lambda r: seen.append(r.messages[-1].content) or "r").register()
    executor = Step("exec", "sim:pe_exec",
                    "T={{ task }}|P={{ plan }}|H={{ history }}|I={{ input }}")
    PlanExecute("pe", planner("pe_p2", "1. a\n2. b"), executor)("the task", cache=False)
    assert seen == ["T=the task|P=1. a\n2. b|H=(nothing yet)|I=a",
                    "T=the task|P=1. a\n2. b|H=1. a → r|I=b"]


def test_plan_in_markdown_fences_is_accepted():
    reply = 'Here you go:\n```json\n{"steps": ["x", "y", "z"]}\n```'
    run = PlanExecute("pe", planner("pe_p3", reply), lambda s: s.upper())("t", cache=False)
    assert run.output == "Z"


def test_unreadable_plan_is_asked_for_again_once():
    seen = []
    model = planner("pe_p4", "I'd start by thinking.", '["only step"]', seen=seen)
    run = PlanExecute("pe", model, lambda s: f"ran {s}")("t", cache=False)
    assert run.output == "ran only step"
    assert "JSON list of steps" in seen[1].messages[-1].content
    assert seen[1].messages[-2].content == "I'd start by thinking."
    [plan] = spans(run, "step", "plan")
    assert len([s for s in spans(run, "model") if s.parent_id == plan.span_id]) == 1


def test_a_plan_unreadable_twice_is_a_clear_error():
    pe = PlanExecute("pe", planner("pe_p5", "no plan", "still no plan"), lambda s: s)
    with pytest.raises(RunError, match=r"plan_execute 'pe': step 'planner' gave no usable plan"
                       ) as info:
        pe("t", cache=False)
    assert info.value.run.status == "error" and info.value.step == "planner"


def test_python_planner_with_a_bad_plan_fails_at_once():
    pe = PlanExecute("pe", FunctionStep("plan", lambda t: "nothing"), lambda s: s)
    with pytest.raises(RunError, match="step 'plan' gave no usable plan"):
        pe("t", cache=False)


def test_replanner_revises_the_plan_and_versions_are_traced():
    replans = iter(['["b2", "c2"]', '{"steps": ["c3"]}', "FINAL ANSWER: all done"])
    SimModel("pe_rp1", fn=lambda r: next(replans)).register()
    pe = PlanExecute("pe", planner("pe_p6", '["a", "b", "c"]'), lambda s: f"<{s}>",
                     replanner=Step("replan", "sim:pe_rp1", "{{ plan }} {{ history }}"),
                     max_replans=5)
    run = pe("t", cache=False)
    assert run.output == "all done"
    assert [s.input for s in spans(run, "step", "execute")] == ["a", "b2", "c3"]
    plans = spans(run, "step", "plan")
    assert [p.iteration for p in plans] == [1, 2, 3, 4]
    metas = [p.meta for p in plans]
    assert [m["steps"] for m in metas] == [["a", "b", "c"], ["b2", "c2"], ["c3"], None]
    assert [m["revised"] for m in metas] == [False, True, True, True] and metas[-1]["final"]
    assert plans[2].output == "1. c3"
    # the re-planner's own spans carry the plan version as their iteration
    assert [s.iteration for s in spans(run, "step", "replan")] == [2, 3, 4]


def test_replanner_prompt_sees_the_full_plan_and_results():
    seen = []
    SimModel("pe_rp2", fn=lambda r: seen.append(r.messages[-1].content) or "DONE").register()
    pe = PlanExecute("pe", planner("pe_p7", '["a", "b"]'), lambda s: s * 2,
                     replanner=Step("rp", "sim:pe_rp2", "{{ task }}|{{ plan }}|{{ history }}"),
                     max_replans=1)
    run = pe("t", cache=False)
    assert seen == ["t|1. a\n2. b|1. a → aa"]
    assert run.output == "aa"  # DONE without an answer: the last result


def test_max_replans_caps_how_often_the_replanner_is_asked():
    calls = []
    SimModel("pe_rp3", fn=lambda r: calls.append(1) or '["again"]').register()
    pe = PlanExecute("pe", planner("pe_p8", '["a"]'), lambda s: s,
                     replanner=Step("rp", "sim:pe_rp3", "{{ plan }}"), max_replans=2)
    run = pe("t", cache=False)
    assert len(calls) == 2
    assert [s.input for s in spans(run, "step", "execute")] == ["a", "again", "again"]
    assert [s.iteration for s in spans(run, "step", "plan")] == [1, 2, 3]


def test_default_replanner_uses_the_planners_model():
    seen = []
    model = planner("pe_p9", '["a", "b"]', "FINAL ANSWER: 7", seen=seen)
    pe = PlanExecute("pe", model, lambda s: s, max_replans=1)
    assert pe.replanner.name == "replanner" and pe.replanner.model.id == "sim:pe_p9"
    assert pe("t", cache=False).output == "7"
    assert "Done so far, with results:\n1. a → a" in seen[1].messages[-1].content


def test_max_replans_without_a_replanner_is_a_spec_error():
    with pytest.raises(SpecError, match="needs a replanner") as info:
        PlanExecute("pe", lambda t: ["a"], lambda s: s, max_replans=1)
    assert info.value.key == "replanner"
    with pytest.raises(SpecError, match="max_steps"):
        PlanExecute("pe", "sim:x", lambda s: s, max_steps=0)


def test_max_steps_stops_an_overlong_plan():
    pe = PlanExecute("long", planner("pe_p10", json.dumps([f"s{i}" for i in range(9)])),
                     lambda s: s, max_steps=3)
    with pytest.raises(MaxIterationsExceeded, match=r"plan_execute 'long'.*max_steps=3") as info:
        pe("t", cache=False)
    assert info.value.run.status == "max_iterations"
    assert len(spans(info.value.run, "step", "execute")) == 3


def test_budget_stops_plan_execution():
    pe = PlanExecute("pe", planner("pe_p11", '["a", "b", "c"]'),
                     Step("exec", "sim:echo", "{{ input }}"))
    with pytest.raises(BudgetExceeded) as info:
        pe("t", cache=False, budget=Budget(max_calls=2))
    assert info.value.run.status == "budget_exceeded"


def agent_executor(name: str) -> Agent:
    SimModel(name, fn=Agent.sim_policy([("add", {"a": 2, "b": 3})], "{observation}")).register()
    return Agent("worker", f"sim:{name}", [add], prompt="{{ task }}: {{ input }}")


def test_agent_as_executor_keeps_parent_ids():
    pe = PlanExecute("pe", planner("pe_p12", '["add", "add again"]'), agent_executor("pe_ag1"))
    run = pe("sum things", cache=False)
    assert run.output == "5"
    by_id = {s.span_id: s for s in run.trace.spans}
    root = spans(run, "run")[0]
    agents = spans(run, "pattern")
    assert [(a.step, a.pattern) for a in agents] == [("worker", "agent")] * 2
    for agent, execute in zip(agents, spans(run, "step", "execute"), strict=True):
        assert agent.parent_id == execute.span_id and execute.parent_id == root.span_id
    for tool in spans(run, "tool"):
        iteration = by_id[tool.parent_id]
        assert iteration.step == "worker" and by_id[iteration.parent_id].kind == "pattern"
    model_inputs = [s.input for s in spans(run, "model") if s.step == "worker"]
    assert model_inputs[0] == "sum things: add"


def test_stepping_descends_into_the_executor_agent():
    pe = PlanExecute("pe", planner("pe_p13", '["add"]'), agent_executor("pe_ag2"))
    run = pe.start("t", cache=False)
    seen = []
    while not run.done:
        seen.append((run.pending[0].kind, run.pending[0].step))
        run.step()
    assert seen == [("model", "planner"), ("model", "worker"), ("tool", "worker"),
                    ("model", "worker")]
    assert run.output == "5"


def test_describe_draws_planner_executor_replanner_loop():
    pe = PlanExecute("pe", "sim:x", Step("exec", "sim:echo", "{{ input }}"), max_replans=2)
    d = pe.describe()
    assert [c["id"] for c in d["children"]] == ["planner", "exec", "replanner"]
    assert ("planner", "exec", "plan step") in d["edges"]
    assert ("exec", "replanner", "results") in d["edges"]
    assert ("replanner", "exec", "revised plan ≤ 2") in d["edges"]
    assert ("replanner", "__out__", "final answer") in d["edges"]
    nested = PlanExecute("pe2", "sim:x", Chain("c", [Step("s", "sim:echo", "x")]))
    assert nested.describe()["children"][1]["pattern"] == "chain"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_plan_execute_over_real_sdk(api):
    with FakeProvider() as fake:
        base = fake.openai_base_url if api == "openai" else fake.anthropic_base_url
        model = resolve_model(f"{api}:fake-model", base_url=base, api_key="sk-fake")
        fake.script([
            '```json\n["add 2 and 3"]\n```',                       # planner
            FakeReply(tool_calls=[("add", {"a": 2, "b": 3})]),      # executor agent
            "It is 5.",
            "FINAL ANSWER: five",                                   # re-planner
        ])
        executor = Agent("worker", model, [add])
        run = PlanExecute("pe", model, executor, max_replans=1)("compute", cache=False)
        assert (run.status, run.output) == ("ok", "five")
        assert [r.api for r in fake.requests] == [api] * 4
        assert fake.requests[1].tools == ["add"]
        assert fake.requests[2].messages[-1]["content"] == "5"
        assert "It is 5." in fake.requests[3].last_user
