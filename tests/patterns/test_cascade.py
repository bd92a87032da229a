"""Cascade: the weak step answers; the strong one is called only when a check on the answer
fails (a function, the answer's self-reported confidence, or a verifier step); every decision
shows in the trace; YAML round-trips."""

from __future__ import annotations

import pytest

from orchnb import Cascade, SimModel, SpecError, Step
from orchnb.patterns import from_yaml
from orchnb.patterns._cascade import parse_verdict


@pytest.fixture(autouse=True)
def models():
    SimModel("unsure", fn=lambda req: (
        "4. Confidence: 0.9" if "2+2" in req.messages[-1].content
        else "maybe 7? Confidence: 20%")).register()
    SimModel("verifier", fn=lambda req: (
        "Verdict: no" if "maybe" in req.messages[-1].content else "Verdict: yes")).register()


def weak() -> Step:
    return Step("cheap", "sim:unsure", "{{ input }}")


def strong() -> Step:
    return Step("dear", "sim:echo", "expert: {{ input }}")


def is_sure(question, answer):
    return "maybe" not in answer


def test_a_passing_check_keeps_the_weak_answer_and_a_failing_one_escalates():
    c = Cascade("c", weak(), strong(), check=is_sure)
    kept = c("2+2")
    assert kept.output == "4. Confidence: 0.9"
    escalated = c("hard sum")
    assert escalated.output == "expert: hard sum"
    df = escalated.trace.df
    check = df[df.step == "check"].iloc[0]
    assert check.route == "strong" and check.raw_label == "escalated" and check.confidence == 0
    models = df[df.kind == "model"]
    assert list(models.step) == ["cheap", "dear"]  # weak first, then the escalation
    assert kept.trace.df[kept.trace.df.step == "check"].iloc[0].route == "weak"


def test_self_reported_confidence_against_the_threshold():
    c = Cascade("c", weak(), strong(), check="confidence", threshold=0.5)
    assert c("2+2").output.startswith("4.")
    run = c("hard sum")  # reported 20%: below 0.5
    assert run.output == "expert: hard sum"
    check = run.trace.df.query("step == 'check'").iloc[0]
    assert check.confidence == pytest.approx(0.2)


def test_a_verifier_step_sees_the_weak_answer_and_steps_like_any_call():
    verify = Step("verify", "sim:verifier", "Q: {{ input }}\nA: {{ steps.cheap }}\nCorrect?")
    c = Cascade("c", weak(), strong(), check=verify)
    run = c.start("hard sum")
    assert run.pending[0].step == "cheap"
    run.step()
    assert run.pending[0].step == "verify"
    run.step()
    assert run.pending[0].step == "dear"
    run.resume()
    assert run.output == "expert: hard sum"
    assert c("2+2").output.startswith("4.")
    assert [n.name for n in c.children()] == ["cheap", "verify", "dear"]


def test_cascade_round_trips_through_yaml():
    c = Cascade("c", weak(), strong(), check=is_sure, threshold=0.7)
    text = c.to_yaml()
    assert "pattern: cascade" in text and "check: is_sure" in text
    again = from_yaml(text, namespace={"is_sure": is_sure})
    assert again.to_yaml() == text and again("hard sum").output == "expert: hard sum"
    conf = Cascade("c2", weak(), strong(), check="confidence")
    assert from_yaml(conf.to_yaml()).check == "confidence"


def test_bad_checks_fail_when_built():
    with pytest.raises(SpecError, match="check="):
        Cascade("c", weak(), strong(), check="sim:verifier")
    with pytest.raises(SpecError, match="distinct names"):
        Cascade("c", weak(), weak(), check=is_sure)


def test_parse_verdict_reads_the_last_word_and_bounds_its_work():
    assert parse_verdict("no issues found, so: yes") == 1.0
    assert parse_verdict("it is wrong") == 0.0
    assert parse_verdict("score: 0.25") == 0.25
    assert parse_verdict("x" * 1_000_000 + " pass") == 1.0
    assert parse_verdict("I cannot tell") is None
