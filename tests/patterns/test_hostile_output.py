"""Hostile model output: parsers answer with a result or their own error, never hang or crash.

Each parser is linear and bounded (``benchmarks/security.py parsers`` measures the times: a few
ms to a few tens of ms per megabyte). The tests pin the outcome types; the only time bound is
a generous hang guard, not a benchmark.
"""

from __future__ import annotations

import sys
import time

import pytest
from _helpers import scripted

from orchnb import Chain, PlanExecute, Router, RunError, Step, Team
from orchnb.models._sdk_support import parse_arguments as parse_native_arguments
from orchnb.patterns._labels import parse_confidence, parse_label
from orchnb.patterns._plans import (
    Decision,
    Final,
    PlanError,
    loose_json,
    parse_decision,
    parse_plan,
    parse_replan,
)
from orchnb.patterns._react_text import Action, Answer, Invalid, parse_arguments, parse_react

HANG_GUARD_S = 2.0

HOSTILE = {
    "open brackets": "[" * 100_000,
    "open brackets 2000": "[" * 2000,
    "label keys": '{"label":' * 50_000,
    "open braces": "{" * 100_000,
    "deep list": "[" * 5000 + "1" + "]" * 5000,
    "deep dict": '{"a":' * 3000 + "1" + "}" * 3000,
    "junk 1 MB": ("lorem ipsum {dolor [sit 'amet\" " * 40_000)[:1_000_000],
    "quotes 1 MB": '"' * 1_000_000,
    "unbalanced quotes": "plan: ['a, \"b] " * 30_000,
    "fence then spaces": "```" + " " * 1_000_000,
    "newlines 1 MB": "\n" * 1_000_000,
    "digits 1 MB": "1" * 1_000_000,
    "letters 1 MB": "a" * 1_000_000,
    "bracket pairs": "[]" * 500_000,
    "label lines": "label: x\n" * 100_000,
    "numbered lines": "1. step\n" * 100_000,
    "python-ish 1 MB": "[" + "'x'," * 250_000 + "]",
}


@pytest.fixture(autouse=True)
def _normal_recursion_limit():
    # The RecursionErrors reported came with Python's default limit: test under it.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(old)


def _timed(fn, *args):
    t = time.perf_counter()
    try:
        return fn(*args), time.perf_counter() - t
    except PlanError as e:
        return e, time.perf_counter() - t


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_plan_parsers_answer_or_raise_plan_error(text):
    for parse in (parse_plan, parse_replan):
        result, took = _timed(parse, text)
        assert isinstance(result, (PlanError, list, Final))
        assert took < HANG_GUARD_S


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_decision_label_react_and_arguments_parsers_return(text):
    for fn, types in (
        (lambda t: parse_decision(t, ["writer", "critic"]), Decision),
        (lambda t: parse_label(t, ["billing", "technical"]), (str, type(None))),
        (parse_confidence, (float, type(None))),
        (parse_react, (Action, Answer, Invalid)),
        (parse_arguments, (dict, str)),
        (parse_native_arguments, dict),
        (loose_json, object),
    ):
        result, took = _timed(fn, text)
        assert isinstance(result, types)
        assert took < HANG_GUARD_S


def test_deep_nesting_is_not_a_plan():
    with pytest.raises(PlanError):
        parse_plan("[" * 2000)
    with pytest.raises(PlanError):
        parse_plan("Plan: " + "[" * 100 + '"a"' + "]" * 100)  # deeper than loose_json reads


def test_too_many_steps_is_a_plan_error():
    with pytest.raises(PlanError, match="more than 200 steps"):
        parse_plan("\n".join(f"{i}. step {i}" for i in range(1, 302)))


def test_ordinary_replies_still_parse():
    assert parse_plan('ok ```json\n["a", "b"]\n``` done') == ["a", "b"]
    assert parse_plan("[it's simple] then [\"a\", \"b\"]") == ["a", "b"]
    assert parse_plan("Plan: [junk [\"x\", \"y\"]") == ["x", "y"]
    assert parse_plan("1. search\n2) summarize") == ["search", "summarize"]
    assert parse_label('```json\n{"label": "billing"}\n```', ["billing", "tech"]) == "billing"
    assert parse_confidence("95% confident") == 0.95
    assert parse_react('Action: add\nAction Input: {"a": 1}') == Action("add", {"a": 1})
    assert parse_decision('{"next": "writer"}', ["writer"]).agent == "writer"


def test_a_long_answer_label_is_read_at_its_end():
    reply = "Let me think. " * 10_000 + "\nLabel: technical"
    assert parse_label(reply, ["billing", "technical"]) == "technical"


def test_router_takes_its_default_route_on_hostile_classifier_output():
    clf = scripted("hostile-clf", '{"label":' * 50_000)
    router = Router("r", Step("classify", clf, "{{ input }}"),
                    {"billing": Step("b", "sim:echo", "B {{ input }}"),
                     "other": Step("o", "sim:echo", "O {{ input }}")}, default="other")
    t = time.perf_counter()
    run = router("hello")
    assert time.perf_counter() - t < HANG_GUARD_S
    assert run.status == "ok" and run.output == "O hello"


@pytest.mark.parametrize("reply", ["[" * 100_000, "[" * 2000, '{"steps":' * 50_000])
def test_plan_execute_fails_with_its_own_error_on_a_hostile_plan(reply):
    planner = scripted(f"hostile-planner-{len(reply)}", *[reply] * 5)
    pipe = PlanExecute("pe", Step("plan", planner, "{{ input }}"),
                       Step("do", "sim:echo", "{{ input }}"), max_replans=0)
    t = time.perf_counter()
    with pytest.raises(RunError):
        pipe("task")
    assert time.perf_counter() - t < 4 * HANG_GUARD_S


def test_team_supervisor_hostile_reply_is_told_back_not_a_crash():
    boss = scripted("hostile-boss", "{" * 100_000, "FINISH: ok")
    team = Team("t", Step("sup", boss, "{{ task }}"), {"writer": Step("w", "sim:echo", "w")},
                cache=False)
    assert team("x").output == "ok"


def test_chain_is_unaffected():
    assert Chain("c", [Step("a", "sim:echo", "{{ input }}")])("hi").output == "hi"
