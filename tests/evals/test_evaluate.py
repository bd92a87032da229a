"""evaluate(): one traced run, defaults and misroutes, the cache, budgets, full pipelines."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import orchnb
from orchnb import Budget, BudgetExceeded, SpecError
from orchnb.evals import EvalReport, RouterCosts, evaluate, load_data

COLUMNS = ["text", "label", "route", "raw_label", "confidence", "defaulted", "correct",
           "latency_ms", "cost_usd"]


def test_classifier_only_eval_is_one_traced_run_with_a_row_per_input(small, triage):
    report = evaluate(triage, small, progress=False)
    assert isinstance(report, EvalReport) and report.n == len(small)
    assert list(report.predictions.columns[:len(COLUMNS)]) == COLUMNS
    assert report.predictions.index.equals(small.index)
    assert "ambiguous" in report.predictions.columns  # the data's other columns are kept
    df = report.run.trace.df
    assert df.run_id.nunique() == 1 and report.run.pipeline == "eval:triage"
    assert report.calls == len(small) and (df.kind == "model").sum() == len(small)
    assert set(df.loc[df.kind == "model", "step"]) == {"classify"}  # no route ran
    assert sorted(df.loc[df.kind == "step", "item"]) == list(range(len(small)))
    stored = orchnb.traces(run_id=report.run.id)
    assert len(stored) == len(df)


def test_defaulted_rows_are_counted_and_misroutes_keep_the_raw_label(small, triage):
    report = evaluate(triage, small, progress=False)
    p = report.predictions
    unknown = p.raw_label == "no idea"  # the keyword model's answer when no rule matches
    assert unknown.any()
    assert (p.defaulted == unknown).all()
    assert (p.loc[unknown, "route"] == "other").all()
    assert report.defaulted == int(unknown.sum())
    assert report.defaulted_rate == pytest.approx(unknown.mean())
    mis = report.misroutes
    assert len(mis) == int((p.route != p.label).sum())
    assert set(mis.columns) >= {"text", "label", "route", "raw_label", "reason"}
    assert (mis.loc[mis.defaulted, "raw_label"] == "no idea").all()
    assert mis.loc[mis.defaulted, "reason"].str.contains("unknown label").all()
    answered = p[~p.defaulted]
    assert report.accuracy_answered == pytest.approx(answered.correct.mean())


def test_rows_that_fail_are_errors_not_crashes(small, make_router):
    router = make_router("strict", default=None)  # no default: an unknown label raises
    report = evaluate(router, small, progress=False)
    failed = report.predictions.error.notna()
    assert failed.any() and report.errors == int(failed.sum())
    assert report.predictions.loc[failed, "route"].isna().all()
    assert "(no route)" in report.labels
    assert not report.predictions.loc[failed, "correct"].any()


def test_rerun_is_answered_by_the_cache_and_cache_false_pays_again(small, triage):
    first = evaluate(triage, small, progress=False)
    assert first.cached_calls == 0 and first.cost_usd > 0 and first.saved_usd == 0
    again = evaluate(triage, small, progress=False)
    assert again.cached_calls == len(small)
    assert again.cost_usd == 0
    assert again.saved_usd == pytest.approx(first.cost_usd)
    assert again.accuracy == first.accuracy
    # List-price figures do not change when the cache answers.
    assert again.cost_per_1k == pytest.approx(first.cost_per_1k)
    bypass = evaluate(triage, small, progress=False, cache=False)
    assert bypass.cached_calls == 0 and bypass.cost_usd == pytest.approx(first.cost_usd)


def test_cost_estimate_is_made_before_and_matches_a_priced_sim_run(small, triage, capsys):
    report = evaluate(triage, small)
    out = capsys.readouterr().out
    assert "Estimate for 60 rows" in out and "gpt-4o-mini" in out
    est = report.estimate
    assert est.calls == len(small)
    # sim counts tokens the way the estimate does: input tokens are exact.
    spans = report.run.trace.df.query("kind == 'model'")
    assert est.input_tokens == spans.input_tokens.sum()
    assert est.usd == pytest.approx(report.cost_usd, rel=0.05)


def test_max_usd_refuses_to_start_when_the_estimate_is_over(small, triage):
    with pytest.raises(BudgetExceeded, match=r"over max_usd=.*nothing was run"):
        evaluate(triage, small, progress=False, max_usd=1e-6)
    assert orchnb.traces().empty


def test_budget_cap_stops_an_eval_with_a_clear_error(small, triage):
    with pytest.raises(BudgetExceeded) as info:
        evaluate(triage, small, progress=False, budget=Budget(max_calls=20), concurrency=4)
    err = info.value
    assert "stopped after" in str(err) and f"of {len(small)} rows" in str(err)
    assert "max_calls" in str(err)
    assert err.run.status == "budget_exceeded"
    assert 0 < len(err.predictions) <= 20
    assert err.predictions.route.notna().all()


def test_max_usd_also_caps_the_spend_when_the_estimate_was_too_low(small, make_router):
    # A classifier that rambles: its answers cost far more than the estimated one label.
    router = make_router("rambler", "eval-ramble", [(r".", "billing " + "blah " * 400)],
                         priced_as="openai:gpt-4o")
    estimate = RouterCosts(router, small.text.tolist()).estimate(None).usd
    with pytest.raises(BudgetExceeded, match="stopped after"):
        evaluate(router, small, progress=False, max_usd=estimate * 2)


def test_full_pipeline_runs_the_routes_and_measures_their_cost(small, triage):
    report = evaluate(triage, small, full_pipeline=True, progress=False)
    p = report.predictions
    assert p.output.notna().all()
    assert report.calls == 2 * len(small)  # classifier + one route step per row
    df = report.run.trace.df
    assert (df.kind == "pattern").sum() == len(small)
    assert (p.route_usd > 0).all() and report.routes_usd == pytest.approx(p.route_usd.sum())
    assert report.cost_usd == pytest.approx(p.classifier_usd.sum() + p.route_usd.sum())
    assert report.estimate.calls == 2 * len(small)
    classify_only = evaluate(triage, small, progress=False)
    assert (classify_only.predictions.route == p.route).all()  # same classifier, same routes


def test_savings_against_the_dearest_route_and_a_baseline_model(small, triage):
    report = evaluate(triage, small, progress=False, baseline="openai:gpt-4o-mini")
    assert report.expensive_route == "technical"  # priced as gpt-4o
    all_exp = report.all_expensive_usd
    assert report.saving_usd == pytest.approx(all_exp - report.router_usd)
    assert report.saving_pct == pytest.approx(100 * report.saving_usd / all_exp)
    assert 0 < report.saving_pct < 100
    assert report.router_usd == pytest.approx(report.classifier_usd + report.routes_usd)
    assert report.cost_per_1k == pytest.approx(report.router_usd / len(small) * 1000)
    # All to gpt-4o-mini is cheaper than the router's mix (which sends some to gpt-4o).
    assert report.baseline_usd < all_exp and report.baseline_saving_usd < report.saving_usd
    assert report.summary.loc["triage", "baseline"] == "openai:gpt-4o-mini"


def test_free_sim_models_give_zero_cost_and_no_saving_percentage(small):
    router = orchnb.Router("free", classifier=lambda t: "billing" if "refund" in t else "other",
                           routes={"billing": orchnb.Step("b", "sim:echo", "B {{ input }}"),
                                   "other": orchnb.Step("o", "sim:echo", "O {{ input }}")},
                           default="other")
    report = evaluate(router, small, progress=False)
    assert report.cost_usd == 0 and report.cost_per_1k == 0
    assert math.isnan(report.saving_pct)
    assert "Router eval" in report._repr_html_()


def test_data_from_a_csv_path_and_other_column_names(tmp_path, small, triage):
    path = tmp_path / "t.csv"
    small.rename(columns={"text": "message", "label": "team"}).to_csv(path, index=False)
    report = evaluate(triage, str(path), text="message", label="team", progress=False)
    assert report.n == len(small)
    with pytest.raises(SpecError, match=r"column 'label' is not in the data.*label='COLUMN'"):
        evaluate(triage, path, text="message", progress=False)
    with pytest.raises(SpecError, match="is not a router"):
        evaluate(orchnb.Chain("c", [orchnb.Step("a", "sim:echo", "x")]), small)


def test_load_data_accepts_pairs_and_rejects_empty_labels():
    assert len(load_data([("refund", "billing"), ("crash", "technical")])) == 2
    with pytest.raises(SpecError, match="empty in 1 row"):
        load_data(pd.DataFrame({"text": ["a", "b"], "label": ["x", None]}))


def test_sample_evaluates_a_seeded_subset(tickets, triage):
    a = evaluate(triage, tickets, sample=50, progress=False, seed=1)
    b = evaluate(triage, tickets, sample=50, progress=False, seed=1)
    assert a.n == 50 and a.predictions.index.equals(b.predictions.index)


def test_report_html_and_charts(small, triage):
    report = evaluate(triage, small, progress=False, baseline="openai:gpt-4o")
    page = report._repr_html_()
    assert "accuracy" in page and "misrouted rows" in page and "<script" not in page
    assert "saving vs openai:gpt-4o" in page and "simulated models" in page
    titles = [f.layout.title.text for f in report.charts()]
    assert any("True label × route" in t for t in titles)
    assert any("per-route" in t for t in titles)
    assert report.plot_flow().data[0].type == "sankey"
    assert report.plot_quality_share().data
    assert "EvalReport 'triage'" in repr(report)


def test_a_routers_own_budget_applies_to_its_eval(small, make_router):
    router = make_router("capped", budget=Budget(max_calls=5))
    with pytest.raises(BudgetExceeded, match="stopped after"):
        evaluate(router, small, progress=False, concurrency=1)
