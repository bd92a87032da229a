"""Several candidate routers in one call; the Pareto front; embedding threshold sweeps."""

from __future__ import annotations

import numpy as np
import pytest

import orchnb
from orchnb import SpecError
from orchnb.evals import Comparison, compare_routers, evaluate, pareto_front, sweep_threshold

from_rules = [(r"refund|charge", "billing"), (r"crash|error", "technical")]


@pytest.fixture
def candidates(make_router, make_embedding_router):
    return {
        "mini-rules": make_router("mini", "eval-mini", priced_as="openai:gpt-4o-mini"),
        "4o-rules": make_router("big", "eval-4o", priced_as="openai:gpt-4o"),
        "few-rules": make_router("few", "eval-few", from_rules, priced_as="openai:gpt-4o"),
        "semantic": make_embedding_router(),
    }


def test_candidates_give_one_summary_row_each_and_a_pareto_front(small, candidates):
    cmp = compare_routers(candidates, small, progress=False)
    assert isinstance(cmp, Comparison)
    s = cmp.summary
    assert list(s.index) == list(candidates)
    assert {"classifier", "accuracy", "ci_low", "ci_high", "macro_f1", "defaulted", "p50_ms",
            "cost_per_1k", "saving_pct", "pareto"} <= set(s.columns)
    # Same rules at gpt-4o prices: as accurate as mini, dearer, so off the front.
    assert s.loc["4o-rules", "accuracy"] == s.loc["mini-rules", "accuracy"]
    assert s.loc["4o-rules", "cost_per_1k"] > s.loc["mini-rules", "cost_per_1k"]
    assert not s.loc["4o-rules", "pareto"]
    assert s["pareto"].tolist() == pareto_front(s.cost_per_1k.tolist(), s.accuracy.tolist())
    assert cmp.pareto == [n for n in s.index if s.loc[n, "pareto"]]
    assert "embed sim:hash" in s.loc["semantic", "classifier"]
    fig = cmp.plot_cost_accuracy()
    assert any(t.name == "Pareto front" for t in fig.data)
    curve = cmp.plot_quality_share()
    assert any(t.name == "semantic sweep" for t in curve.data)
    assert "Router comparison" in cmp._repr_html_() and "★" in cmp._repr_html_()
    assert cmp[cmp.best].accuracy == s.accuracy.max()


def test_evaluate_accepts_a_list_of_candidates(small, make_router):
    a, b = make_router("triage"), make_router("triage", "eval-b", from_rules)
    cmp = evaluate([a, b], small, progress=False)
    assert list(cmp.summary.index) == ["triage", "triage#2"]
    assert len({r.run.id for r in cmp.reports.values()}) == 2


def test_candidates_max_usd_caps_the_total_estimate(small, candidates):
    with pytest.raises(orchnb.BudgetExceeded, match=r"4 candidates.*nothing was run"):
        compare_routers(candidates, small, progress=False, max_usd=1e-6)


def test_threshold_sweep_reuses_the_similarities(small, make_embedding_router):
    router = make_embedding_router(threshold=0.25)
    report = evaluate(router, small, progress=False, oos_label="other")
    assert report.predictions.similarity.notna().all()
    sweep = report.threshold_sweep([-1.0, 0.1, 0.25, 0.4, 2.0])
    assert list(sweep.columns) == ["threshold", "accuracy", "answered_accuracy",
                                   "abstention_rate", "macro_f1", "expensive_share", "quality",
                                   "cost_per_1k",
                                   # oos_label="other" (a true label): out-of-scope columns
                                   "in_scope_accuracy", "oos_recall", "oos_precision"]
    plain = evaluate(router, small, progress=False).threshold_sweep([0.25])
    assert "oos_recall" not in plain.columns  # a default route is not out of scope by itself
    assert at_threshold_matches(report, sweep, 0.25)
    at = sweep.set_index("threshold")
    # At the router's own threshold the sweep reproduces the eval.
    assert at.loc[0.25, "accuracy"] == pytest.approx(report.accuracy)
    assert at.loc[0.25, "abstention_rate"] == pytest.approx(report.defaulted_rate)
    assert at.loc[0.25, "macro_f1"] == pytest.approx(report.macro_f1)
    assert at.loc[-1.0, "abstention_rate"] == 0 and at.loc[2.0, "abstention_rate"] == 1
    assert at.loc[2.0, "accuracy"] == pytest.approx((small.label == "other").mean())
    assert np.all(np.diff(sweep.abstention_rate) >= 0)
    assert report.run.calls == 2  # examples + the queries in one batch; the sweep made none
    assert len(report.threshold_sweep()) == 21
    assert report.plot_threshold().data


def at_threshold_matches(report, sweep, t):
    row = sweep.set_index("threshold").loc[t]
    return (row.in_scope_accuracy == pytest.approx(report.in_scope_accuracy)
            and row.oos_recall == pytest.approx(report.oos_recall)
            and row.oos_precision == pytest.approx(report.oos_precision))


def test_sweep_threshold_function_and_a_router_without_similarities(small, make_router,
                                                                     make_embedding_router):
    sweep = sweep_threshold(make_embedding_router(threshold=None), small, [0.0, 0.3])
    assert len(sweep) == 2
    with pytest.raises(SpecError, match="needs an embedding classifier"):
        sweep_threshold(make_router(), small, [0.1])
