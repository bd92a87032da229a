"""Router reports that do not flatter: accuracy on answered rows beside the headline whenever rows
defaulted, out-of-scope numbers only when asked for, unknown money read as unknown."""

from __future__ import annotations

import math
import re
import warnings

import pandas as pd
import pytest

import orchnb
from orchnb.patterns import Router

# Billing and technical words only: account and shipping tickets get "no idea" and default.
NARROW = [(r"refund|charge|invoice|bill|paid|pay", "billing"),
          (r"crash|error|app|bug|api|wifi", "technical")]




@pytest.fixture
def narrow_router(make_router):
    return lambda default: make_router("narrow", "eval-narrow", NARROW, default=default)


def test_default_credit_is_shown_beside_the_headline_accuracy(small, narrow_router):
    _narrow_router = narrow_router
    reports = {d: orchnb.evaluate(_narrow_router(d), small, progress=False, n_boot=0)
               for d in ("technical", "billing", "other")}
    # The same classifier scores differently by which label the default happens to hit...
    acc = {d: r.accuracy for d, r in reports.items()}
    assert len(set(acc.values())) > 1
    # ...while its accuracy on the rows it answered does not move.
    answered = {r.accuracy_answered for r in reports.values()}
    assert len(answered) == 1
    r = reports["technical"]
    assert r.defaulted > 0 and r.defaulted_correct > 0
    p = r.predictions
    assert r.accuracy_answered == pytest.approx(p.loc[~p.defaulted, "correct"].mean())
    assert r.accuracy > r.accuracy_answered or r.defaulted_correct < r.defaulted
    html = r._repr_html_()
    assert "accuracy on answered rows" in html
    assert f"{r.defaulted:,} defaulted ({r.defaulted_rate:.1%}) to technical" in html
    assert f"{r.accuracy_answered:.1%} on the {r.answered:,} answered rows" in repr(r)
    s = r.summary.iloc[0]
    assert s.answered_accuracy == r.accuracy_answered and s.defaulted_share == r.defaulted_rate
    cmp = orchnb.compare_routers({"t": _narrow_router("technical")}, small, progress=False,
                                 n_boot=0)
    assert f"(answered {r.accuracy_answered:.1%})" in cmp._repr_html_()


def test_nothing_defaulted_shows_no_answered_box(small, make_router):
    rules = [*NARROW, (r".", "account")]  # every row gets a label
    r = orchnb.evaluate(make_router("all", "eval-all", rules), small, progress=False, n_boot=0)
    assert r.defaulted == 0 and "accuracy on answered rows" not in r._repr_html_()


def test_no_out_of_scope_box_without_oos_label(small, make_router):
    router = make_router(default="other")          # "other" is a true label of some rows
    plain = orchnb.evaluate(router, small, progress=False, n_boot=0)
    assert plain.oos_label is None
    assert all(math.isnan(getattr(plain, k)) for k in ("in_scope_accuracy", "oos_recall",
                                                       "oos_precision", "abstention_auroc"))
    assert "out of scope" not in plain._repr_html_() and "AUROC" not in plain._repr_html_()
    assert "oos_recall" not in plain.summary.columns
    asked = orchnb.evaluate(router, small, progress=False, n_boot=0, oos_label="other")
    assert asked.oos_label == "other" and "in scope / out of scope (other)" in asked._repr_html_()
    with pytest.raises(orchnb.SpecError, match="oos_label='oos' is not a route of router"):
        orchnb.evaluate(router, small, progress=False, oos_label="oos")


def _router_with_an_unpriced_route(make_router):
    priced = make_router("priced", "eval-kw-priced")
    orchnb.SimModel("eval-dark-route", default="ok", priced_as="openai:my-finetune-xyz"
                    ).register()
    r = dict(priced.routes)
    r["technical"] = orchnb.Step("dark_team", "sim:eval-dark-route", "Solve: {{ input }}")
    return Router("half-priced", classifier=priced.classifier, routes=r, default="other")


def test_an_unpriced_route_leaves_the_dearest_route_and_the_saving_unknown(small, make_router):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice"
        report = orchnb.evaluate(_router_with_an_unpriced_route(make_router), small,
                                 progress=False, n_boot=0)
        text, html, summary = repr(report), report._repr_html_(), report.summary.iloc[0]
    assert report.unpriced_routes == ["technical"]
    assert report.expensive_route is None
    assert math.isnan(report.saving_usd) and math.isnan(report.cost_per_1k)
    assert "saving undefined (route technical is unpriced and might be the dearest" in text
    assert "route technical is unpriced and might be the dearest" in html
    assert not re.search(r"\$0\.00(?!\d)", html) and not re.search(r"saving −?\d+%", text)
    assert summary.expensive_route is None and math.isnan(summary.saving_pct)


def test_a_judge_on_an_unpriced_model_costs_unknown_not_zero(fake_env):
    fake_env.responder = lambda req: '{"reason": "fine", "score": 4}'
    chain = orchnb.Chain("c", [orchnb.FunctionStep("id", lambda x: x)])
    report = orchnb.evaluate(chain, pd.DataFrame({"text": ["a", "b"]}),
                             scorers=[orchnb.judge("openai:my-finetune-xyz", "ok")],
                             progress=False)
    assert math.isnan(report.judge_usd)
    html = report._repr_html_()
    assert "plus judges unpriced" in html and "judges $0" not in html


def test_macro_f1_interval_is_withheld_with_few_rows_per_class(tickets, small, make_router):
    router = make_router()
    few = orchnb.evaluate(router, small.head(40), progress=False, n_boot=200)  # 8 per class
    assert all(math.isnan(x) for x in few.macro_f1_ci)
    assert "rows per class (< 30)" in few.macro_f1_ci_note
    assert "CI withheld" in few._repr_html_()
    many = orchnb.evaluate(router, tickets, progress=False, n_boot=200)      # ~66 per class
    lo, hi = many.macro_f1_ci
    assert many.macro_f1_ci_note == "" and lo <= many.macro_f1 <= hi
    assert f"CI {lo:.3f}–{hi:.3f}" in many._repr_html_()


@pytest.mark.parametrize("name", ["exact", "iexact", "contains", "json:a", "numeric"])
def test_built_in_scorers_give_nan_not_one_for_a_missing_or_empty_expected(name):
    from orchnb.evals._scorers import as_scorer

    sc = as_scorer(name)
    for expected in (None, float("nan"), "", "   "):
        for output in ("", "anything", None):
            assert math.isnan(sc(output, expected, {})), (name, output, expected)


def test_rows_without_an_expected_answer_are_left_out_and_said_so():
    chain = orchnb.Chain("echo", [orchnb.FunctionStep("say", lambda x: x)])
    data = pd.DataFrame({"text": ["a", "b", "", "d"], "answer": ["a", "x", "", "  "]})
    report = orchnb.evaluate(chain, data, expected="answer", scorers=["exact", "contains"],
                             progress=False, n_boot=0)
    assert report.scores["exact"].tolist()[:2] == [1.0, 0.0]
    assert report.scores["exact"].iloc[2:].isna().all()  # was 1.0: "" == ""
    assert report.scores["contains"].iloc[2:].isna().all()  # was 1.0: "" in anything
    assert report.mean("exact") == 0.5 and report.summary.loc["exact", "scored"] == 2
    assert "2 of 4 rows scored (no expected answer on the rest)" in report._repr_html_()
