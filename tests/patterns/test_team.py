"""Team: a supervisor hands turns to members over a shared workspace until FINISH."""

from __future__ import annotations

import pytest
from _helpers import add, spans
from _helpers import scripted as boss

from orchnb import (
    Agent,
    Budget,
    BudgetExceeded,
    Chain,
    FunctionStep,
    MaxIterationsExceeded,
    SpecError,
    Step,
    Team,
)
from orchnb.models import SimModel, resolve_model
from orchnb.testing import FakeProvider, FakeReply


def members():
    SimModel("tm_calc", fn=Agent.sim_policy([("add", {"a": 2, "b": 3})], "sum={observation}")
             ).register()
    return {
        "math": Agent("math", "sim:tm_calc", [add]),
        "writer": Step("writer", "sim:echo", "Write up: {{ workspace }}"),
    }


def test_supervisor_hands_turns_until_finish():
    seen = []
    team = Team("t", boss("tm_b1", "math: add 2 and 3", "writer", "FINISH: 5, written up",
                          seen=seen), members())
    run = team("what is 2+3?", cache=False)
    assert (run.status, run.output) == ("ok", "5, written up")
    handoffs = spans(run, "step", "handoff")
    assert [(h.iteration, h.route) for h in handoffs] == [(1, "math"), (2, "writer"),
                                                         (3, "FINISH")]
    assert [h.meta for h in handoffs] == [
        {"from": "supervisor", "to": "math", "after": None, "instruction": "add 2 and 3"},
        {"from": "supervisor", "to": "writer", "after": "math", "instruction": None},
        {"from": "supervisor", "to": "FINISH", "after": "writer", "instruction": None},
    ]
    # the default supervisor prompt shows the team, the task and the shared workspace
    prompt = seen[2].messages[-1].content
    assert "(math, writer)" in prompt and "what is 2+3?" in prompt
    assert "[math] sum=5\n[writer] Write up: [math] sum=5" in prompt
    assert "(empty)" in seen[0].messages[-1].content


def test_member_input_carries_task_workspace_and_instruction():
    got = []
    team = Team("t", boss("tm_b2", "a: first", "b", "FINISH"), {
        "a": FunctionStep("a", lambda x: got.append(x) or "A did it"),
        "b": FunctionStep("b", lambda x, vars: got.append((x, str(vars["workspace"]))) or "B"),
    })
    run = team("the task", cache=False)
    assert got == ["the task\n\nYour instruction: first",
                   ("the task\n\nWorkspace:\n[a] A did it", "[a] A did it")]
    assert run.output == "B"  # FINISH without an answer: the last member's output


def test_members_can_be_any_pattern():
    chain = Chain("pair", [Step("one", "sim:echo", "1 {{ input }}"),
                           Step("two", "sim:echo", "2 {{ input }}")])
    team = Team("t", boss("tm_b3", "pair", "shout", "FINISH: ok"),
                [chain, FunctionStep("shout", str.upper)])
    assert list(team.members) == ["pair", "shout"]
    run = team("x", cache=False)
    assert run.output == "ok"
    assert [s.step for s in spans(run, "step") if s.step in ("one", "two", "shout")] == [
        "one", "two", "shout"]


def test_unreadable_supervisor_reply_is_posted_and_costs_a_turn():
    seen = []
    team = Team("t", boss("tm_b4", "hmm, tough one", "writer", "FINISH: y", seen=seen),
                members())
    run = team("x", cache=False)
    assert run.output == "y"
    first = spans(run, "step", "handoff")[0]
    assert first.route is None and "named no team member" in first.output
    assert "[team] the supervisor's reply 'hmm, tough one'" in seen[1].messages[-1].content


def test_max_turns_stops_with_a_clear_status():
    team = Team("chatty", boss("tm_b5", *["writer"] * 10), members(), max_turns=2)
    with pytest.raises(MaxIterationsExceeded, match=r"team 'chatty'.*max_turns=2.*writer") as i:
        team("x", cache=False)
    run = i.value.run
    assert run.status == "max_iterations"
    # the status a person sees is named in the message about max_turns (issue 24)
    assert "status is max_iterations" in str(i.value) and "raise max_turns" in str(i.value)
    assert [h.route for h in spans(run, "step", "handoff")] == ["writer"] * 3
    assert len(spans(run, "step", "writer")) == 2  # the extra turn may only FINISH


def test_the_extra_turn_after_max_turns_may_finish():
    team = Team("t", boss("tm_b6", "writer", "FINISH: fine"), members(), max_turns=1)
    assert team("x", cache=False).output == "fine"


def test_budget_stops_the_team():
    team = Team("t", boss("tm_b7", *["writer"] * 10), members())
    with pytest.raises(BudgetExceeded) as info:
        team("x", cache=False, budget=Budget(max_calls=3))
    assert info.value.run.status == "budget_exceeded"


def test_agent_member_spans_keep_their_parents():
    team = Team("t", boss("tm_b8", "math", "FINISH"), members())
    run = team("x", cache=False)
    by_id = {s.span_id: s for s in run.trace.spans}
    [agent] = spans(run, "pattern")
    handoff = by_id[agent.parent_id]
    assert (handoff.step, handoff.iteration, handoff.route) == ("handoff", 1, "math")
    assert by_id[handoff.parent_id].kind == "run"
    for s in spans(run, "tool") + [m for m in spans(run, "model") if m.step == "math"]:
        iteration = by_id[s.parent_id]
        assert iteration.step == "math" and iteration.parent_id == agent.span_id
    sup = spans(run, "step", "supervisor")
    assert [s.iteration for s in sup] == [1, 2]
    assert all(by_id[s.parent_id].step == "handoff" for s in sup)


def test_stepping_descends_into_members_and_approval_works():
    team = Team("t", boss("tm_b9", "math", "FINISH"), members())
    run = team.start("x", cache=False, approve_tools=True)
    seen = []
    while not run.done:
        b = run.pending[0]
        seen.append((b.kind, b.step))
        run.reject("no tools today") if b.kind == "tool" else run.step()
    assert seen == [("model", "supervisor"), ("model", "math"), ("tool", "math"),
                    ("model", "math"), ("model", "supervisor")]
    assert run.output == "sum=The user rejected this call to add: no tools today"


def test_team_inside_a_chain_and_json_decisions():
    team = Team("t", boss("tm_b10", '{"next": "writer"}', '{"next": "FINISH", "answer": "z"}'),
                members())
    chain = Chain("c", [team, Step("after", "sim:echo", "got {{ input }}")])
    run = chain("x", cache=False)
    assert run.output == "got z"
    [pattern] = [s for s in spans(run, "pattern") if s.pattern == "team"]
    assert pattern.step == "t" and all(h.parent_id == pattern.span_id
                                       for h in spans(run, "step", "handoff"))


def test_constructor_errors():
    with pytest.raises(SpecError, match="no members"):
        Team("t", "sim:x", {})
    with pytest.raises(SpecError, match="two members are named 'w'"):
        Team("t", "sim:x", [Step("w", "sim:echo", "a"), Step("w", "sim:echo", "b")])
    with pytest.raises(SpecError, match="max_turns"):
        Team("t", "sim:x", members(), max_turns=0)


def test_describe_draws_supervisor_and_members():
    team = Team("t", "sim:x", {"calc": members()["math"], "w": Step("w", "sim:echo", "x")})
    d = team.describe()
    assert [c["id"] for c in d["children"]] == ["supervisor", "calc", "w"]
    assert d["children"][1]["pattern"] == "agent"
    for m in ("calc", "w"):
        assert ("supervisor", m, "hand off") in d["edges"] and (m, "supervisor", "result") in (
            d["edges"])
    assert ("supervisor", "__out__", "FINISH") in d["edges"]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_team_over_real_sdk(api):
    with FakeProvider() as fake:
        base = fake.openai_base_url if api == "openai" else fake.anthropic_base_url
        model = resolve_model(f"{api}:fake-model", base_url=base, api_key="sk-fake")
        fake.script([
            "calc: add 2 and 3",                                    # supervisor
            FakeReply(tool_calls=[("add", {"a": 2, "b": 3})]),      # member agent
            "It is 5.",
            "FINISH: five",                                         # supervisor
        ])
        team = Team("t", model, {"calc": Agent("calc", model, [add])})
        run = team("compute", cache=False)
        assert (run.status, run.output) == ("ok", "five")
        assert [r.api for r in fake.requests] == [api] * 4
        assert fake.requests[1].last_user == "compute\n\nYour instruction: add 2 and 3"
        assert "[calc] It is 5." in fake.requests[3].last_user
