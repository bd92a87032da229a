"""evaluate() on any pipeline: scorers by name, functions, judges; the report's numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import orchnb
from orchnb.evals import ScoreReport
from orchnb.evals._scorers import as_scorer, first_number
from orchnb.evals._scores_report import mean_ci
from orchnb.exceptions import SpecError

QA = pd.DataFrame({
    "question": ["2+2", "capital of France", "3*3", "colour of the sky", "10-4", "boom"],
    "answer": ["4", "Paris", "9", "blue", "6", "x"],
})
ANSWERS = {"2+2": "4", "capital of France": "It is Paris.", "3*3": "9",
           "colour of the sky": "Blue", "10-4": "7"}


def _qa_model(name="qa-bot", priced_as="openai:gpt-4o-mini"):
    def answer(request):
        q = request.messages[-1].content.split("Q:", 1)[-1].strip()
        return ANSWERS.get(q, "no idea")

    return orchnb.SimModel(name, fn=answer, priced_as=priced_as).register()


def _chain(name="qa", model="qa-bot"):
    _qa_model(model)

    def guard(x):
        if "boom" in x:
            raise ValueError("exploded")
        return x

    return orchnb.Chain(name, [orchnb.FunctionStep("guard", guard),
                               orchnb.Step("answer", f"sim:{model}", "Q: {{ input }}")])


@pytest.mark.parametrize(("spec", "output", "expected", "score"), [
    ("exact", " 4 ", "4", 1.0), ("exact", "Blue", "blue", 0.0), ("iexact", "Blue", "blue", 1.0),
    ("contains", "It is Paris.", "paris", 1.0), ("contains", "Rome", "Paris", 0.0),
    ("regex:^\\d+$", "42", None, 1.0), ("regex:^\\d+$", "42 apples", None, 0.0),
    ("json:a.b", '```json\n{"a": {"b": 3}}\n```', "3", 1.0),
    ("json:a.b", '{"a": {"b": 3}}', '{"a": {"b": 4}}', 0.0),
    ("json:items.1", 'Sure: {"items": ["x", "y"]}', "y", 1.0), ("json:a", "not json", "1", 0.0),
    ("numeric", "about 41 km", "41", 1.0), ("numeric:0.5", "41.6", "42", 1.0),
    ("numeric:1%", "101.5", "100", 0.0), ("numeric:2%", "$1,019.99", "1000", 1.0),
    ("numeric", "none", "3", 0.0),
])
def test_built_in_scorers(spec, output, expected, score):
    assert as_scorer(spec)(output, expected, {}) == score


def test_function_scorers_take_two_or_three_arguments_and_bools():
    two = as_scorer(lambda out, exp: out.startswith(exp))
    three = as_scorer(lambda out, exp, row: row["w"] * (out == exp))
    assert two("abc", "a", {}) == 1.0 and two.name == "score"
    assert three("a", "a", {"w": 0.5}) == 0.5
    assert math.isnan(as_scorer(lambda o, e: None)("a", "b", {}))
    with pytest.raises(SpecError, match=r"unknown scorer 'nope'.*built-ins: exact"):
        as_scorer("nope")
    with pytest.raises(SpecError, match="not a valid regular expression"):
        as_scorer("regex:(")
    assert first_number("Total: $1,234.50") == 1234.5


def test_any_pipeline_eval_scores_every_row_in_one_traced_run():
    chain = _chain()
    report = orchnb.evaluate(chain, QA, text="question", expected="answer",
                             scorers=["exact", "contains", lambda o, e: len(o) < 5],
                             progress=False)
    assert isinstance(report, ScoreReport)
    s = report.scores
    assert s["exact"].tolist() == [1, 0, 1, 0, 0, 0]
    assert s["contains"].tolist() == [1, 1, 1, 1, 0, 0]
    assert s["status"].tolist() == ["ok"] * 5 + ["error"]
    assert "exploded" in s.loc[5, "error"] and s.loc[5, "output"] is None
    assert report.errors == 1 and len(report.failures) == 4
    assert {"output", "cost_usd", "latency_ms", "tokens", "service_ms", "queue_ms"} <= set(s)
    assert (s.loc[:4, "tokens"] > 0).all() and (s.loc[:4, "calls"] == 1).all()
    # one run, a row per input under it
    df = report.run.trace.df
    assert report.run.pattern == "eval" and df[df.kind == "run"].shape[0] == 1
    assert sorted(df[df.kind == "pattern"].item.dropna().astype(int)) == list(range(6))
    # summary: means with a seeded percentile bootstrap, as numpy computes it
    summary = report.summary
    assert summary.loc["exact", "mean"] == pytest.approx(2 / 6)
    rng = np.random.default_rng(0)
    v = s["exact"].to_numpy(dtype=float)
    boot = v[rng.integers(0, 6, size=(1000, 6))].mean(axis=1)
    assert (summary.loc["exact", "ci_low"], summary.loc["exact", "ci_high"]) == pytest.approx(
        tuple(np.quantile(boot, [0.025, 0.975])))
    # money: list price per 1,000 inputs
    assert report.cost_per_1k == pytest.approx(s["list_usd"].sum() / 6 * 1000)
    assert report.cost_per_1k > 0 and report.judge_usd == 0


def test_rerun_hits_the_cache_and_cache_false_pays_again():
    chain = _chain("qa2", "qa-bot2")
    first = orchnb.evaluate(chain, QA, text="question", expected="answer", progress=False)
    again = orchnb.evaluate(chain, QA, text="question", expected="answer", progress=False)
    assert first.cost_usd > 0 and again.cost_usd == 0 and again.cached_calls == 5
    assert again.cost_per_1k == pytest.approx(first.cost_per_1k)  # list price either way
    fresh = orchnb.evaluate(chain, QA, text="question", expected="answer", progress=False,
                            cache=False)
    assert fresh.cached_calls == 0 and fresh.cost_usd > 0


def test_a_pipelines_own_cache_false_wins_unless_the_eval_says_otherwise():
    _qa_model("qa-bot3")
    chain = orchnb.Chain("qa3", [orchnb.Step("answer", "sim:qa-bot3", "Q: {{ input }}")],
                         cache=False)
    kw = dict(text="question", expected="answer", progress=False)
    orchnb.evaluate(chain, QA, **kw)
    again = orchnb.evaluate(chain, QA, **kw)
    assert again.cached_calls == 0 and again.cost_usd > 0  # the pipeline said no cache
    orchnb.evaluate(chain, QA, cache=True, **kw)
    forced = orchnb.evaluate(chain, QA, cache=True, **kw)
    assert forced.cached_calls == len(QA)  # the eval's explicit cache=True overrides it


def test_report_html_charts_and_repr():
    report = orchnb.evaluate(_chain(), QA, text="question", expected="answer", progress=False)
    html = report._repr_html_()
    assert html.startswith("<div class='tex2jax_ignore mathjax_ignore'>")
    assert "exact" in html and "failure" in html
    assert [type(f).__name__ for f in report.charts()] == ["Figure", "Figure"]
    assert "ScoreReport 'qa'" in repr(report)


def test_scorer_errors_and_missing_expected_are_clear():
    chain = _chain()
    with pytest.raises(SpecError, match="scorer 'exact' compares with an expected answer"):
        orchnb.evaluate(chain, QA, text="question", scorers=["exact"], progress=False)
    with pytest.raises(SpecError, match="is not a router, so its outputs are scored"):
        orchnb.evaluate(chain, QA, text="question", progress=False)

    def broken(out, exp):
        raise KeyError("x")

    with pytest.raises(SpecError, match="scorer 'broken' raised KeyError"):
        orchnb.evaluate(chain, QA, text="question", expected="answer", scorers=[broken],
                        progress=False)


def test_routers_keep_their_report_and_can_be_scored_as_pipelines(small, triage):
    assert type(orchnb.evaluate(triage, small, progress=False)).__name__ == "EvalReport"
    scored = orchnb.evaluate(triage, small, expected="label", scorers=["regex:team"],
                             progress=False)
    assert isinstance(scored, ScoreReport) and scored.pattern == "router"
    assert scored.summary.loc["regex:team", "mean"] == 0.0  # outputs are the teams' answers


def test_regex_scorer_needs_no_expected_and_mean_ci_handles_nan():
    report = orchnb.evaluate(_chain(), QA.question.tolist(), text="question",
                             scorers=["regex:\\d"], progress=False)
    assert report.scores["regex:\\d"].tolist() == [1, 0, 1, 0, 1, 0]
    assert math.isnan(mean_ci(np.array([np.nan]))[0])


def test_agents_and_map_reduce_are_evaluated_like_any_pipeline():
    @orchnb.tool
    def double(n: int) -> int:
        """Twice n."""
        return 2 * n

    def policy(request):
        seen = [m.content for m in request.messages if m.role == "tool"]
        if not seen:
            return {"tool": "double", "args": {"n": int(request.messages[-1].content)}}
        return seen[-1]

    orchnb.SimModel("doubler", fn=policy, priced_as="openai:gpt-4o-mini").register()
    agent = orchnb.Agent("agent", "sim:doubler", [double], max_iterations=3)
    mr = orchnb.MapReduce("mr", orchnb.FunctionStep("dbl", lambda x: str(2 * int(x))),
                          lambda outs: " ".join(outs),
                          chunker=lambda text: text.split())
    data = pd.DataFrame({"text": ["2", "5"], "want": ["4", "10"]})
    a = orchnb.evaluate(agent, data, expected="want", scorers=["exact", "numeric"],
                        progress=False)
    assert a.pattern == "agent" and a.scores["exact"].tolist() == [1.0, 1.0]
    assert (a.scores["calls"] == 2).all()  # the tool call, then the answer
    m = orchnb.evaluate(mr, data.assign(text=["1 2", "3"]), expected="want",
                        scorers=["contains"], progress=False)
    assert m.pattern == "mapreduce" and m.scores["output"].tolist() == ["2 4", "6"]
