"""Decisions by confidence interval and margin (compare's verdicts), and power / sample size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import orchnb
from orchnb.evals import Experiment, ScoreReport
from orchnb.evals._decide import agresti_min, decide, paired_interval


def _report(name, right, *, pattern="chain", cost=0.001):
    """A ScoreReport with 0/1 ``exact`` scores ``right`` (no pipeline run needed)."""
    n = len(right)
    scores = pd.DataFrame({"input": [f"q{i}" for i in range(n)], "output": ["x"] * n,
                           "exact": np.asarray(right, dtype=float), "status": ["ok"] * n,
                           "cost_usd": [cost] * n, "list_usd": [cost] * n, "calls": [1] * n,
                           "cached_calls": [0] * n, "tokens": [3] * n,
                           "latency_ms": [1.0] * n, "service_ms": [1.0] * n})
    return ScoreReport(name, scores, [{"name": "exact", "binary": True, "llm": False}],
                       meta={"pattern": pattern}, n_boot=200)


def _experiment(a, b, **kw):
    return Experiment({"chain": _report("chain", a, cost=0.001),
                       "agent": _report("agent", b, pattern="agent", cost=0.01)}, **kw)


def test_12_of_20_against_16_of_20_is_never_equivalent_or_within():
    # McNemar p = 0.125 here: the old decision read it as "within 20.0 points" and chose chain.
    chain = [1] * 12 + [0] * 8
    agent = [1] * 16 + [0] * 4
    exp = _experiment(chain, agent)
    v = exp.verdicts.iloc[0]
    assert v.verdict in ("worse", "inconclusive") and v.verdict != "equivalent"
    assert v.difference == pytest.approx(-20.0)
    assert v.ci_low < -20 < v.ci_high and v.margin == 2.0
    if v.verdict == "inconclusive":
        assert v.rows_needed > 20
    assert exp.choice == "agent"
    assert "within 20" not in exp.decision and "p =" not in exp.decision
    assert "95% CI [" in exp.decision and "Agresti–Min" in exp.decision
    assert "rows would tell" in exp.decision


def test_identical_answers_on_2000_rows_are_equivalent_within_2_points_but_20_rows_are_not():
    rng = np.random.default_rng(3)
    same = (rng.random(2000) < 0.8).astype(float)
    exp = _experiment(same, same, margin=2)
    v = exp.verdicts.iloc[0]
    assert v.verdict == "equivalent" and v.ci_low > -2 and v.ci_high < 2
    assert exp.choice == exp.best == "chain"  # as good and cheaper
    assert exp.decision.endswith("and is the simplest candidate; agent is equivalent within ±2 "
                                 "points (+0.0 points, 95% CI [-0.1, +0.1] by paired Wald "
                                 "interval, Agresti–Min adjusted on 2,000 rows)")
    dear = Experiment({"chain": _report("chain", same, cost=0.01),
                       "agent": _report("agent", same, pattern="agent", cost=0.001)})
    assert dear.best == "agent" and dear.choice == "chain"  # simpler, shown not worse
    assert dear.decision.startswith("chain is not worse than agent by more than 2 points on "
                                    "exact (non-inferiority")
    few = _experiment(same[:20], same[:20]).verdicts.iloc[0]
    # A bootstrap would give [0, 0] here and "prove" equality from 20 rows.
    assert few.verdict == "inconclusive" and few.ci_high > 2 and few.rows_needed > 20


def _decided_share(p_a_only, p_b_only, n, sims, rng, margin=0.02):
    """Share of simulated evals of ``n`` rows whose verdict is not inconclusive."""
    counts = rng.multinomial(n, [p_a_only, p_b_only, 1 - p_a_only - p_b_only], size=sims)
    decided = 0
    for a_only, b_only, _ in counts:
        v = decide("a", "b", "exact", agresti_min(int(a_only), int(b_only), n),
                   margin=margin * 100)
        decided += v.verdict != "inconclusive"
    return decided / sims


def test_a_5_point_gap_on_40_rows_is_inconclusive_with_rows_needed_a_simulation_confirms():
    a = np.array([1.0] * 34 + [0.0] * 6)          # 85%
    b = a.copy()
    b[[34, 35, 36, 37]] = 1                          # B alone right on 4 rows,
    b[[0, 1]] = 0                                    # A alone on 2: a 5-point gap
    v = _experiment(b, a).verdict("chain", "agent")
    assert v.verdict == "inconclusive" and v.interval.diff == pytest.approx(0.05)
    need = v.rows_needed
    assert 300 < need < 800
    rng = np.random.default_rng(0)
    # The truth is what the 40 rows showed; at the rows needed, 80% of evals should decide.
    low = _decided_share(4 / 40, 2 / 40, int(need * 0.8), 2000, rng)
    high = _decided_share(4 / 40, 2 / 40, int(need * 1.2), 2000, rng)
    assert low < 0.8 < high, (need, low, high)  # the simulated 80%-power n is within ±20%


def test_a_clear_gap_on_enough_rows_is_better_or_worse_and_the_sentence_names_the_test():
    rng = np.random.default_rng(1)
    agent = (rng.random(1000) < 0.9).astype(float)
    chain = agent.copy()
    chain[np.flatnonzero(agent == 1)[:100]] = 0      # 10 points lower
    exp = _experiment(chain, agent)
    v = exp.verdict("chain", "agent")
    assert v.verdict == "worse" and v.rows_needed is None
    assert "worse than agent on exact (the CI lies below 0)" in v.sentence
    assert exp.choice == "agent"
    assert "chain is worse (-10.0 points, 95% CI [" in exp.decision
    flipped = exp.verdict("agent", "chain")
    assert flipped.verdict == "better"


def test_continuous_scores_use_the_bootstrap_and_constant_differences_are_not_proof():
    a = np.full(10, 0.7)
    iv = paired_interval(a, a)
    assert iv.method == "paired percentile bootstrap" and iv.high > 0.1
    rng = np.random.default_rng(2)
    x = rng.random(3000)
    iv = paired_interval(x, x + rng.normal(0, 0.01, 3000))
    assert decide("a", "b", "judge", iv, margin=2).verdict == "equivalent"


def test_margin_is_checked_and_kept_with_a_saved_experiment():
    same = [1.0, 0.0] * 10
    with pytest.raises(orchnb.SpecError, match="margin must be a number of points"):
        _experiment(same, same, margin=0)
    exp = _experiment(same, same, margin=5)
    exp.save()
    again = orchnb.evals.load_experiment(exp.id)
    assert again.margin == 5 and again.decision == exp.decision


def test_compare_end_to_end_gives_verdicts_with_the_margin():
    rows = pd.DataFrame({"text": [f"q{i}" for i in range(20)],
                         "answer": [f"a{i}" for i in range(20)]})

    def bot(name, right):
        orchnb.SimModel(name, fn=lambda r: (f"a{int(r.messages[-1].content[1:])}"
                                            if int(r.messages[-1].content[1:]) in right
                                            else "no"), priced_as="openai:gpt-4o-mini"
                        ).register()
        return orchnb.Chain(name, [orchnb.Step("s", f"sim:{name}", "{{ input }}")])

    exp = orchnb.compare({"small": bot("dec-12", set(range(12))),
                          "big": bot("dec-16", set(range(16)))}, rows, expected="answer",
                         progress=False, save=False, margin=3)
    v = exp.verdicts
    assert list(v.columns[:9]) == ["a", "b", "scorer", "difference", "ci_low", "ci_high",
                                   "margin", "verdict", "rows_needed"]
    assert v.iloc[0].margin == 3 and v.iloc[0].verdict in ("worse", "inconclusive")
    assert exp.choice == "big"


def test_the_decision_says_the_winner_costs_many_times_more_and_the_chart_title_is_short():
    # Issue 24: the decision left out that the winner cost 66x more; the Pareto chart's
    # title was the whole decision sentence, clipped.
    exp = Experiment({"chain": _report("chain", [1] * 10 + [0] * 190, cost=0.0001),
                      "agent": _report("agent", [1] * 190 + [0] * 10, pattern="agent",
                                       cost=0.0066)})
    assert exp.choice == "agent"
    assert exp.decision.endswith("; it costs 66× as much as chain ($6.60 against $0.10 per "
                                 "1k inputs)")
    close = Experiment({"chain": _report("chain", [1] * 10 + [0] * 190, cost=0.001),
                        "agent": _report("agent", [1] * 190 + [0] * 10, pattern="agent",
                                         cost=0.0015)})
    assert "as much as" not in close.decision  # 1.5x: not worth a word
    title = exp.plot_pareto().layout.title.text
    assert title == "Cost against exact · choice: agent"


# -- power ------------------------------------------------------------------------------------

def test_plan_eval_matches_statsmodels_one_sample_power_on_the_differences():
    power = pytest.importorskip("statsmodels.stats.power")
    for base, diff, disc, alpha, pw in [(0.8, 0.05, None, 0.05, 0.8), (0.6, -0.1, 0.3, 0.01, 0.9),
                                        (0.9, 0.02, 0.05, 0.05, 0.8)]:
        plan = orchnb.plan_eval(baseline_rate=base, difference=diff, alpha=alpha, power=pw,
                                discordant=disc)
        psi = disc if disc is not None else base * (1 - base - diff) + (base + diff) * (1 - base)
        es = abs(diff) / math.sqrt(psi - diff ** 2)
        ref = power.NormalIndPower().solve_power(effect_size=es, alpha=alpha, power=pw, ratio=0)
        assert plan.rows == math.ceil(ref)
        assert f"{plan.rows:,} rows" in plan.sentence
    assert orchnb.plan_eval(baseline_rate=0.8, difference=0.05).assumed_independent


def test_plan_eval_refuses_impossible_plans():
    with pytest.raises(orchnb.SpecError, match="difference must not be 0"):
        orchnb.plan_eval(baseline_rate=0.8, difference=0)
    with pytest.raises(orchnb.SpecError, match="not a rate between 0 and 1"):
        orchnb.plan_eval(baseline_rate=0.98, difference=0.05)
    with pytest.raises(orchnb.SpecError, match="difference must be a number between -1 and 1"):
        orchnb.plan_eval(baseline_rate=0.5, difference=5)
    with pytest.raises(orchnb.SpecError, match=r"smaller than \|difference\|"):
        orchnb.plan_eval(baseline_rate=0.5, difference=0.1, discordant=0.05)


def test_after_an_eval_the_detectable_difference_shrinks_with_rows():
    rng = np.random.default_rng(4)
    a = (rng.random(400) < 0.8).astype(float)
    b = np.where(rng.random(400) < 0.1, 1 - a, a)
    small = _experiment(a[:100], b[:100]).verdicts.iloc[0].detectable
    big = _experiment(a, b).verdicts.iloc[0].detectable
    assert big == pytest.approx(small / 2, rel=0.35) and 0 < big < small


def test_a_cached_candidates_latency_is_marked_cached():
    # Issue 24: a cached candidate's "0.0 ms" read as a very fast model.
    cached = _report("agent", [1] * 20, pattern="agent")
    cached.scores["cached_calls"] = 1
    cached.scores["latency_ms"] = 0.0
    half = _report("chain", [1] * 20)
    half.scores.loc[:9, "cached_calls"] = 1
    html = Experiment({"chain": half, "agent": cached})._repr_html_()
    assert "0.0 / 0.0 (cached)" in html
    assert "1.0 / 1.0 (50% of calls cached)" in html
    assert "(cached)" not in Experiment({"chain": _report("chain", [1] * 20),
                                         "agent": _report("agent", [0] * 20)})._repr_html_()


def test_the_plan_sentence_reads_as_english():
    plan = orchnb.plan_eval(baseline_rate=0.85, difference=-0.05)
    assert "a 5-point drop from an 85% baseline" in plan.sentence
    assert "a 10-point rise from a 60% baseline" in orchnb.plan_eval(
        baseline_rate=0.6, difference=0.1).sentence


def test_a_decided_pair_shows_no_rows_needed_marker_in_html():
    exp = Experiment({"chain": _report("chain", [1] * 40), "agent": _report("agent", [0] * 40)})
    assert exp.verdicts["rows_needed"].isna().all()  # decided: nothing more to ask for
    assert "&lt;NA&gt;" not in exp._repr_html_() and "<NA>" not in exp._repr_html_()
