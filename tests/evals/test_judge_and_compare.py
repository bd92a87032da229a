"""LLM judges through both SDKs over loopback HTTP; compare() with paired tests, the decision,
persistence and the cache."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import orchnb
from orchnb.evals import experiments, load_experiment
from orchnb.evals._paired import binom_two_sided, mcnemar, paired_bootstrap

MODELS = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-haiku-4-5"}
ROWS = pd.DataFrame({"text": [f"q{i}" for i in range(40)], "answer": [f"a{i}" for i in range(40)]})


def _bot(name, right, priced_as):
    """A sim model answering rows whose number is in ``right`` correctly."""
    def answer(request):
        q = request.messages[-1].content.strip()
        i = int(q[1:])
        return f"a{i}" if i in right else "wrong"

    orchnb.SimModel(name, fn=answer, priced_as=priced_as).register()
    return orchnb.Chain(name, [orchnb.Step("answer", f"sim:{name}", "{{ input }}")])


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_pointwise_judge_through_the_real_sdk(fake_env, api):
    def grade(req):
        good = "Answer to grade:\nParis" in req.last_user
        return ('{"reason": "names the capital", "score": 5}' if good
                else 'Score: 2 - "reason" missing')

    fake_env.responder = grade
    chain = orchnb.Chain("capital", [orchnb.FunctionStep("say", lambda x: x.split("|")[1])])
    data = pd.DataFrame({"text": ["France?|Paris", "France?|Lyon"]})
    report = orchnb.evaluate(chain, data, scorers=[orchnb.judge(MODELS[api], "Names the "
                                                                "capital")], progress=False)
    assert report.scores["judge"].tolist() == [1.0, 0.25]
    assert report.scores["judge_reason"].tolist()[0] == "names the capital"
    paths = {r.path for r in fake_env.requests}
    assert paths == ({"/v1/chat/completions"} if api == "openai" else {"/v1/messages"})
    assert "Rubric: Names the capital" in fake_env.requests[0].last_user
    assert report.judge_usd > 0 and report.cost_usd == 0  # judge cost reported apart
    assert len(report.judge_runs) == 1 and report.judge_runs[0].pattern == "judge"


def test_judge_that_fails_leaves_nan_with_the_reason(fake_env):
    fake_env.responder = lambda req: "I refuse to grade"
    chain = orchnb.Chain("c", [orchnb.FunctionStep("id", lambda x: x)])
    report = orchnb.evaluate(chain, ["a", "b"], text="text",
                             scorers=[orchnb.judge(MODELS["openai"], "ok")], progress=False)
    assert report.scores["judge"].isna().all()
    assert report.scores["judge_reason"].str.contains("no score").all()
    assert report.summary.loc["judge", "scored"] == 0


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_pairwise_judge_asks_both_orders_and_cancels_position_bias(fake_env, api):
    def fair(req):
        a = re.search(r"Answer A:\n(.*)\n\nAnswer B", req.last_user, re.S).group(1)
        return '{"reason": "r", "winner": "%s"}' % ("A" if "good" in a else "B")

    chain_a = orchnb.Chain("good", [orchnb.FunctionStep("g", lambda x: "good " + x)])
    chain_b = orchnb.Chain("bad", [orchnb.FunctionStep("b", lambda x: "bad " + x)])
    exp = orchnb.compare([chain_a, chain_b], ["x", "y", "z"], text="text",
                         scorers=["regex:good"], progress=False)
    fake_env.responder = fair
    prefs = exp.prefer(orchnb.judge(MODELS[api], "better"))
    row = prefs.iloc[0]
    assert (row.a_wins, row.b_wins, row.ties, row.consistent) == (3, 0, 0, 1.0)
    assert len(fake_env.requests) == 6  # each row in both orders
    fake_env.responder = lambda req: '{"winner": "A"}'  # always the first position
    biased = exp.prefer(orchnb.judge(MODELS[api], "better"), cache=False).iloc[0]
    assert (biased.a_wins, biased.b_wins, biased.ties, biased.consistent) == (0, 0, 3, 0.0)
    assert biased.a_win_rate == 0.5


def test_mcnemar_and_binomial_equal_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 0), (0, 5), (2, 10), (7, 15), (30, 70), (50, 100)]:
        want = stats.binomtest(k, n, 0.5).pvalue if n else 1.0
        assert binom_two_sided(k, n) == pytest.approx(want, rel=1e-9, abs=1e-15)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    p, a_only, b_only = mcnemar(a, b)
    assert (a_only, b_only) == (int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum()))
    assert p == pytest.approx(stats.binomtest(min(a_only, b_only), a_only + b_only).pvalue)


def test_paired_bootstrap_interval_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = rng.random(300)
    b = a - 0.05 + rng.normal(0, 0.1, 300)
    diff, (lo, hi), p = paired_bootstrap(a, b, n_boot=4000, seed=0)
    ref = stats.bootstrap((a - b,), np.mean, method="percentile", n_resamples=4000,
                          random_state=np.random.default_rng(0)).confidence_interval
    assert diff == pytest.approx(np.mean(a - b))
    assert lo == pytest.approx(ref.low, abs=3e-3) and hi == pytest.approx(ref.high, abs=3e-3)
    assert p < 0.001
    assert paired_bootstrap(a, a)[2] == 1.0


def test_a_bootstrap_p_is_never_zero_but_below_one_in_a_thousand_for_a_clear_gap():
    # Issue 24: p_bootstrap printed "0"; B resamples cannot show less than (0 + 1) / (B + 1).
    import numpy as np

    a, b = np.ones(200), np.r_[np.ones(10), np.zeros(190)]
    p = paired_bootstrap(a, b, n_boot=2000, seed=0)[2]
    assert 0 < p == 2 / 2001 < 0.001


def test_compare_side_by_side_with_paired_tests_and_a_decision():
    chain = _bot("cmp-chain", set(range(34)), "openai:gpt-4o-mini")      # 85%
    agent_like = _bot("cmp-big", set(range(36)), "openai:gpt-4o")        # 90%
    agent_like.pattern = "agent"  # the seed's order: an agent is the less simple pattern
    exp = orchnb.compare({"chain": chain, "agent": agent_like}, ROWS, expected="answer",
                         progress=False)
    t = exp.table
    assert list(t.index) == ["chain", "agent"]
    assert t.loc["chain", "exact"] == pytest.approx(0.85) and t.loc["agent", "exact"] == 0.9
    assert {"exact_ci_low", "exact_ci_high", "cost_per_1k", "p50_ms", "p95_ms", "errors",
            "pareto"} <= set(t.columns)
    assert t.loc["chain", "cost_per_1k"] < t.loc["agent", "cost_per_1k"]
    test = exp.tests.iloc[0]
    assert (test.a_only, test.b_only) == (0, 2) and test["diff"] == pytest.approx(-0.05)
    assert test.p_mcnemar == pytest.approx(0.5)  # 2 discordant rows: binomtest(0, 2)
    # 2 discordant rows of 40 cannot show chain within 2 points of agent: McNemar's p = 0.5
    # used to read as "chain is within 5.0 points of agent" and pick chain.
    assert exp.best == "agent" and exp.choice == "agent"
    assert exp.decision.startswith(
        "agent scores best on exact (0.9); no simpler candidate is shown within 2 points of "
        "it: chain is not shown better, worse or equivalent (-5.0 points, 95% CI [")
    assert "rows would tell at this difference (80% power))" in exp.decision
    assert "p =" not in exp.decision
    assert exp.plot_pareto().data
    assert exp._repr_html_().startswith("<div class='tex2jax_ignore mathjax_ignore'>")


def test_a_significantly_worse_simpler_candidate_is_not_chosen():
    chain = _bot("cmp-weak", set(range(10)), "openai:gpt-4o-mini")
    strong = _bot("cmp-strong", set(range(40)), "openai:gpt-4o")
    strong.pattern = "agent"
    exp = orchnb.compare({"chain": chain, "agent": strong}, ROWS, expected="answer",
                         progress=False)
    assert exp.choice == "agent"
    assert exp.decision.startswith("agent scores best on exact (1)")
    assert "chain is worse (-75.0 points, 95% CI [" in exp.decision


def test_the_decision_between_equals_and_for_the_simplest_best():
    same_a = _bot("cmp-eq-a", set(range(20)), "openai:gpt-4o-mini")
    same_b = _bot("cmp-eq-b", set(range(20)), "openai:gpt-4o-mini")
    exp = orchnb.compare({"a": same_a, "b": same_b}, ROWS, expected="answer", progress=False,
                         save=False)
    # Identical answers on 40 rows: equal here, but 40 rows cannot show equivalence within 2.
    assert exp.decision.startswith("a scores best on exact (0.5) and is the simplest "
                                   "candidate; b is not shown better, worse or equivalent "
                                   "(+0.0 points, 95% CI [-4.7, +4.7]")
    wide = orchnb.compare({"a": same_a, "b": same_b}, ROWS, expected="answer", progress=False,
                          save=False, margin=5)
    assert wide.decision.endswith("b is equivalent within ±5 points (+0.0 points, 95% CI "
                                  "[-4.7, +4.7] by paired Wald interval, Agresti–Min adjusted "
                                  "on 40 rows)")
    better = _bot("cmp-eq-c", set(range(30)), "openai:gpt-4o-mini")
    exp = orchnb.compare({"c": better, "a": same_a}, ROWS, expected="answer", progress=False,
                         save=False)
    assert exp.decision.startswith("c scores best on exact (0.75) and is the simplest "
                                   "candidate; a is worse (-25.0 points, 95% CI [")


def test_experiments_persist_reopen_and_rerun_from_the_cache():
    a = _bot("persist-a", set(range(20)), "openai:gpt-4o-mini")
    b = _bot("persist-b", set(range(30)), "openai:gpt-4o-mini")
    exp = orchnb.compare([a, b], ROWS, expected="answer", progress=False, name="ab test")
    listed = experiments()
    assert listed.iloc[0]["id"] == exp.id and listed.iloc[0]["candidates"] == ["persist-a",
                                                                               "persist-b"]
    again = load_experiment(exp.id)
    assert again.run is None if hasattr(again, "run") else True
    cols = ["exact", "exact_ci_low", "exact_ci_high", "cost_per_1k", "errors"]
    pd.testing.assert_frame_equal(again.table[cols], exp.table[cols])
    assert again.decision == exp.decision and load_experiment("ab test").id == exp.id
    rerun = orchnb.compare([a, b], ROWS, expected="answer", progress=False)
    assert (rerun.table["cached_calls"] == 40).all() and (rerun.table["paid_usd"] == 0).all()
    with pytest.raises(orchnb.SpecError, match="no saved experiment"):
        load_experiment("nope")


def test_unknown_price_stays_unknown_after_a_cache_hit(fake_env):
    fake_env.responder = lambda req: "a1"
    chain = orchnb.Chain("unpriced", [orchnb.Step("s", "openai:my-finetune-xyz", "{{ input }}")])
    first = orchnb.evaluate(chain, ROWS.head(3), expected="answer", progress=False)
    again = orchnb.evaluate(chain, ROWS.head(3), expected="answer", progress=False)
    assert again.cached_calls == 3
    for report in (first, again):
        assert np.isnan(report.cost_per_1k)  # unknown, never $0
        assert ">unpriced</div>" in report._repr_html_()  # the cost box reads unpriced
        assert "unpriced per 1k inputs" in repr(report)
