"""Judge.calibrate / Judge.align against people's labels, through the real openai SDK and the
FakeProvider: a judge that disagrees in a learnable way is improved on held-out rows; one that
disagrees at random is not, and the original is kept."""

from __future__ import annotations

import json
import re
import zlib

import pandas as pd
import pytest

import orchnb

MODEL = "openai:gpt-4o-mini"
# People pass the "good" answers. Some answers cite the (made up) ZORP policy.
ROWS = pd.DataFrame({
    "input": [f"question {i}" for i in range(80)],
    "output": [("good" if i % 2 else "bad") + (" per ZORP" if i % 3 == 0 else "") + f" #{i}"
               for i in range(80)],
})
ROWS["label"] = ["pass" if i % 2 else "fail" for i in range(80)]
_SHOWN_PASSING = re.compile(r"ZORP[^\n]*\nGrade: 5 \(pass\)")


def _answer(prompt: str) -> str:
    return prompt.split("Answer to grade:\n", 1)[1].split("\n\nGrade the answer", 1)[0]


def _reply(good: bool) -> str:
    return json.dumps({"reason": "ok" if good else "no", "score": 5 if good else 1})


def learnable(req):
    """Fails every ZORP answer, unless its prompt shows a ZORP answer graded as passing."""
    prompt = req.last_user
    answer = _answer(prompt)
    good = answer.startswith("good")
    if "ZORP" in answer and not _SHOWN_PASSING.search(prompt):
        good = False
    return _reply(good)


def noisy(req):
    """Wrong on ~30% of answers, picked by a hash of the answer: nothing to learn."""
    answer = _answer(req.last_user)
    wrong = zlib.crc32(answer.encode()) % 10 < 3
    return _reply(answer.startswith("good") != wrong)


def test_calibrate_measures_the_judge_on_labelled_rows(fake_env):
    fake_env.responder = learnable
    j = orchnb.judge(MODEL, "The answer is good.")
    a = j.calibrate(ROWS, n_boot=200)
    assert j.calibration is a and a.n == 80
    good_zorp = sum(1 for i in range(80) if i % 2 and i % 3 == 0)
    assert a.tnr == 1.0 and a.tpr == pytest.approx(1 - good_zorp / 40)
    assert all("ZORP" in o for o in a.disagreements["output"])


def test_align_raises_held_out_agreement_on_a_learnable_judge(fake_env):
    fake_env.responder = learnable
    j = orchnb.judge(MODEL, "The answer is good.")
    result = j.align(ROWS, holdout=0.5, k=4)
    assert result.improved and result.judge is result.aligned
    assert result.before.n == result.after.n == 40
    assert result.after.accuracy == 1.0 and result.before.accuracy < 0.9
    assert result.after.kappa > result.before.kappa
    assert result.judge.examples and all(e["verdict"] == "pass" for e in result.examples)
    assert result.judge.calibration is result.after
    assert "aligned with" in result.sentence and "Judge alignment" in result._repr_html_()
    # Every example came from a training row: none of the held-out rows was shown.
    held = set(result.after.rows["output"])
    assert not {e["output"] for e in result.examples} & held


def test_align_keeps_the_original_on_a_judge_that_disagrees_at_random(fake_env):
    fake_env.responder = noisy
    j = orchnb.judge(MODEL, "The answer is good.")
    result = j.align(ROWS, holdout=0.5, k=6)
    assert not result.improved and result.judge is j
    assert result.after.accuracy == result.before.accuracy < 0.9
    assert "not improved, keeping the original judge" in result.sentence


def test_align_with_a_rewritten_rubric(fake_env):
    def responder(req):
        if "Rewrite the rubric" in req.last_user:
            return "An answer is good when it starts with good; ZORP citations are fine."
        return learnable(req)

    fake_env.responder = responder
    result = orchnb.judge(MODEL, "The answer is good.").align(ROWS, k=2, rewrite=True)
    assert result.rubric.startswith("An answer is good") and result.judge.rubric == result.rubric


def test_a_report_scored_by_a_calibrated_judge_shows_the_corrected_pass_rate(fake_env):
    fake_env.responder = learnable
    j = orchnb.judge(MODEL, "The answer is good.")
    a = j.calibrate(ROWS, n_boot=300)
    chain = orchnb.Chain("bot", [orchnb.FunctionStep("say", lambda x: x)])
    data = pd.DataFrame({"text": [f"good #{i}" for i in range(6)] + ["bad #6", "bad #7"]})
    report = orchnb.evaluate(chain, data, scorers=[j], progress=False)
    c = report.corrected_pass_rate()
    assert c.raw == 0.75
    assert c.rate == pytest.approx(min(1.0, (0.75 + a.tnr - 1) / (a.tpr + a.tnr - 1)))
    assert c.ci_low <= c.rate <= c.ci_high
    assert "pass rate, corrected" in report._repr_html_() and "raw 75.0%" in report._repr_html_()
    assert "judge pass rate corrected" in repr(report)
    uncalibrated = orchnb.evaluate(chain, data, scorers=[orchnb.judge(MODEL, "x")],
                                   progress=False)
    with pytest.raises(orchnb.SpecError, match="calibrate"):
        uncalibrated.corrected_pass_rate()
