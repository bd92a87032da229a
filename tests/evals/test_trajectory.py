"""Trajectory scorers: an agent's recorded tool calls against the expected ones (strict,
unordered, subset, superset), argument matching, step limits, a judge of the whole trajectory,
and the per-row diff in ``report.failures``."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import orchnb
from orchnb.evals._trajectory import _Matcher, expected_calls, judge_trajectory
from orchnb.patterns._react_text import sim_agent_policy


def search(q: str) -> str:
    """Search the orders."""
    return f"found {q}"


def lookup(id: int) -> str:
    """Look an order up."""
    return f"order {id}: shipped"


def refund(id: int) -> str:
    """Refund an order."""
    return f"refunded {id}"


PLANS = {  # what the sim agent does for each input
    "q0": [("search", {"q": "o1"}), ("lookup", {"id": 1})],
    "q1": [("lookup", {"id": 1}), ("search", {"q": "o1"})],
    "q2": [("search", {"q": "o1"}), ("lookup", {"id": 1}), ("refund", {"id": 1})],
    "q3": [("search", {"q": "o1"})],
    "q4": [("lookup", {"id": 5})],
    "q5": [],
}
S, L = {"name": "search"}, {"name": "lookup"}
ROWS = pd.DataFrame({
    "text": list(PLANS),
    "tools": [["search", "lookup"]] * 4 + [[{"name": "lookup", "args": {"id": 4}}], "[]"],
})


@pytest.fixture
def agent():
    policies = {k: sim_agent_policy(v, "done") for k, v in PLANS.items()}

    def play(request):
        first = next(m.content for m in request.messages if m.role == "user")
        return policies[first](request)

    orchnb.SimModel("traj-agent", fn=play).register()
    return orchnb.Agent("support", "sim:traj-agent", [search, lookup, refund])


def _got(plan):
    return [{"name": n, "args": a, "status": "ok"} for n, a in plan]


@pytest.mark.parametrize("mode, passes", [
    ("strict", [True, False, False, False]),
    ("unordered", [True, True, False, False]),
    ("subset", [True, True, False, True]),
    ("superset", [True, True, True, False]),
])
def test_each_mode_decides_rows_by_its_rule(mode, passes):
    same = _Matcher("exact")
    got = [judge_trajectory(_got(PLANS[f"q{i}"]), [S, L], mode=mode, same=same,
                            max_steps=None)[0] for i in range(4)]
    assert got == [float(p) for p in passes]


def test_strict_diff_names_the_step_the_extra_and_the_missing_call():
    same = _Matcher("exact")
    _, extra = judge_trajectory(_got(PLANS["q2"]), [S, L], mode="strict", same=same,
                                max_steps=None)
    assert extra.endswith('extra refund({"id": 1}) at step 3')
    _, missing = judge_trajectory(_got(PLANS["q3"]), [S, L], mode="strict", same=same,
                                  max_steps=None)
    assert "missing lookup (before step 2)" in missing
    assert missing.startswith('expected search → lookup; got search({"q": "o1"}):')
    _, swapped = judge_trajectory(_got(PLANS["q1"]), [S, L], mode="unordered", same=same,
                                  max_steps=1)
    assert swapped == ('expected search → lookup; got lookup({"id": 1}) → search({"q": "o1"}): '
                       '2 tool calls, over max_steps=1')


def test_arguments_match_exactly_by_a_function_or_not_at_all():
    want = [{"name": "lookup", "args": {"id": 4}}]
    got = _got(PLANS["q4"])
    score, why = judge_trajectory(got, want, mode="strict", same=_Matcher("exact"),
                                  max_steps=None)
    assert score == 0 and 'step 1: lookup({"id": 5}), expected lookup({"id": 4})' in why
    near = _Matcher(lambda g, w: abs(g["id"] - w["id"]) <= 1)
    assert judge_trajectory(got, want, mode="strict", same=near, max_steps=None) == (1.0, None)
    assert judge_trajectory(got, want, mode="superset", same=_Matcher(None),
                            max_steps=None)[0] == 1.0
    # 2 == 2.0 and key order do not matter; a function that must use the matching: the
    # greedy choice (first call to the first expected) would leave the second unmatched.
    assert _Matcher("exact")({"name": "f", "args": {"a": 2, "b": 1}},
                             {"name": "f", "args": {"b": 1.0, "a": 2}})
    loose = _Matcher(lambda g, w: g["x"] >= w["x"])
    made = [{"name": "f", "args": {"x": 5}}, {"name": "f", "args": {"x": 1}}]
    asked = [{"name": "f", "args": {"x": 1}}, {"name": "f", "args": {"x": 4}}]
    assert judge_trajectory(made, asked, mode="unordered", same=loose, max_steps=None)[0] == 1


def test_expected_cells_read_as_names_dicts_or_json_and_nothing_is_nan():
    assert expected_calls("search, lookup", "x") == [S, L]
    assert expected_calls(json.dumps([{"name": "lookup", "args": {"id": 4}}]), "x") == [
        {"name": "lookup", "args": {"id": 4}}]
    assert expected_calls("[]", "x") == [] and expected_calls(" ", "x") is None
    assert expected_calls(math.nan, "x") is None
    with pytest.raises(orchnb.SpecError, match="each expected call is a tool name"):
        expected_calls([3], "x")
    with pytest.raises(orchnb.SpecError, match="mode must be one of strict, unordered"):
        orchnb.trajectory("tools", mode="exact")
    with pytest.raises(orchnb.SpecError, match="or a step limit"):
        orchnb.trajectory()


def test_an_agent_eval_scores_trajectories_and_shows_diffs_in_failures(agent):
    scorers = [orchnb.trajectory("tools"), orchnb.trajectory("tools", mode="superset",
                                                            name="covers"),
               orchnb.trajectory(max_steps=2)]
    rep = orchnb.evaluate(agent, ROWS, scorers=scorers, progress=False, n_boot=0)
    s = rep.scores
    assert s["trajectory"].tolist() == [1, 0, 0, 0, 0, 1]
    assert s["covers"].tolist() == [1, 1, 1, 0, 0, 1]
    assert s["steps"].tolist() == [1, 1, 0, 1, 1, 1]
    assert [c["name"] for c in s.loc[2, "tool_calls"]] == ["search", "lookup", "refund"]
    assert s.loc[2, "tool_calls"][2]["args"] == {"id": 1}
    fails = rep.failures
    assert list(fails.index) == [1, 2, 3, 4]
    assert "extra refund" in fails.loc[2, "trajectory_diff"]
    assert fails.loc[2, "steps_diff"] == "3 tool calls, over max_steps=2"
    assert fails.loc[0 + 3, "covers_diff"].endswith("missing lookup")
    assert "extra refund" in rep._repr_html_()
    with pytest.raises(orchnb.SpecError, match="reads column 'plan'"):
        orchnb.evaluate(agent, ROWS, scorers=[orchnb.trajectory("plan")], progress=False)


def test_a_judge_reads_the_whole_trajectory(agent):
    seen = []

    def grade(request):
        prompt = request.messages[-1].content
        seen.append(prompt)
        return json.dumps({"reason": "looked", "score": 1 if "refund(" in prompt else 5})

    orchnb.SimModel("traj-judge", fn=grade).register()
    j = orchnb.judge("sim:traj-judge", "Never refunds without being asked", name="careful",
                     trajectory=True)
    rep = orchnb.evaluate(agent, ROWS.head(3), scorers=[j], progress=False, n_boot=0)
    assert rep.scores["careful"].tolist() == [1.0, 1.0, 0.0]
    assert rep.scores.loc[2, "careful_reason"] == "looked"
    assert any("Trajectory to grade:\nTool calls:\n1. search" in p and
               "→ order 1: shipped" in p and "Final answer:\ndone" in p for p in seen)
