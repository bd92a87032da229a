"""QualityRouter: a router whose classifier learned from graded answers when the weak model is
enough; it runs, steps, traces, previews and (with a CSV of examples) round-trips YAML."""

from __future__ import annotations

import pandas as pd
import pytest

from orchnb import QualityRouter, SpecError, Step
from orchnb.patterns import from_yaml


def graded(n: int = 60) -> pd.DataFrame:
    """Proof questions need the strong model; sums do not."""
    rows = []
    for i in range(n):
        hard = i % 3 == 0
        text = (f"prove theorem {i} about prime ideals" if hard
                else f"add the numbers {i} and {i + 1}")
        rows.append({"text": text, "weak_score": 0 if hard else 1, "strong_score": 1})
    return pd.DataFrame(rows)


def make(**kw) -> QualityRouter:
    return QualityRouter("qr", weak=Step("cheap", "sim:echo", "cheap: {{ input }}"),
                         strong=Step("dear", "sim:echo", "dear: {{ input }}"),
                         examples=kw.pop("examples", graded()), **{"strong_share": 0.34, **kw})


def test_quality_router_sends_hard_queries_to_strong_and_traces_the_score():
    qr = make()
    run = qr("prove a theorem about prime ideals")
    assert run.output == "dear: prove a theorem about prime ideals"
    assert qr("add the numbers 3 and 4").output == "cheap: add the numbers 3 and 4"
    df = run.trace.df
    decision = df[(df.kind == "step") & (df.step == "quality")].iloc[0]
    assert decision.route == "strong" and decision.confidence > qr.threshold
    assert (df.kind == "model").sum() == 2  # the query's embedding, then the strong model


def test_quality_router_steps_to_the_chosen_route():
    # A local embedder makes no paid call, so the first boundary is the chosen route's call.
    run = make().start("prove theorem 7 about prime ideals")
    assert run.status == "paused" and run.pending[0].step == "dear"
    run.step()
    assert run.status == "ok" and run.output.startswith("dear:")


def test_model_ids_become_steps_that_answer_the_input():
    qr = QualityRouter("qr", weak="sim:echo", strong="sim:echo", examples=graded())
    assert set(qr.routes) == {"weak", "strong"} and qr.routes["weak"].model.id == "sim:echo"
    assert [m.id for m in qr.models()] == ["sim:echo"]


def test_threshold_from_quality_and_from_budget():
    by_quality = make(strong_share=None, quality=0.9)  # every proof goes strong: 1/3 of rows
    assert (by_quality.scorer.oof > by_quality.threshold).mean() == pytest.approx(1 / 3)
    cheap = make(strong_share=None, budget_per_1k=1.0, weak_cost=0.001, strong_cost=0.01)
    assert (cheap.scorer.oof > cheap.threshold).mean() == 0.0  # the budget buys weak only
    half = make(strong_share=None, budget_per_1k=5.5, weak_cost=0.001, strong_cost=0.01)
    # 5.5 dollars buys half the rows on strong; tied scores allow 1/3 under that cap, not 2/3.
    assert (half.scorer.oof > half.threshold).mean() == pytest.approx(1 / 3)


@pytest.mark.parametrize("kw, key", [
    ({"strong_share": 0.3, "threshold": 0.1}, "strong_share"),
    ({"strong_share": 1.5}, None),
    ({"strong_share": None, "budget_per_1k": 2.0}, None),
    ({"examples": graded().drop(columns="weak_score")}, "examples"),
    ({"examples": graded(10)}, "examples"),
])
def test_bad_knobs_fail_before_any_call(kw, key):
    with pytest.raises(SpecError) as info:
        make(**kw)
    if key:
        assert info.value.key == key


def test_a_dataframe_router_says_it_cannot_be_yaml():
    with pytest.raises(SpecError, match="CSV path"):
        make().to_yaml()


def test_a_csv_router_round_trips_through_yaml(tmp_path):
    path = tmp_path / "graded.csv"
    graded().to_csv(path, index=False)
    qr = make(examples=str(path))
    text = qr.to_yaml()
    assert "pattern: quality_router" in text and "strong_share: 0.34" in text
    again = from_yaml(text)
    assert isinstance(again, QualityRouter) and again.to_yaml() == text
    assert again.threshold == pytest.approx(qr.threshold)
    assert again("prove theorem 1 about prime ideals").output.startswith("dear:")
    grouped = make(examples=str(path), groups="weak_score", length=True)
    assert "groups: weak_score" in grouped.to_yaml() and "length: true" in grouped.to_yaml()
    again = from_yaml(grouped.to_yaml())
    assert again.columns["groups"] == "weak_score" and again.scorer.length


def test_preview_shows_the_local_embedding_and_both_routes():
    calls = make().preview("prove it").df
    assert list(calls["step"]) == ["quality", "cheap", "dear"]
