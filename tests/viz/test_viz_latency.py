"""Latency distributions per step: p50/p95 correct, annotated, and aggregated at scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchnb.viz import latency, latency_stats


def test_latency_stats_match_numpy_quantiles(mapreduce_df):
    stats = latency_stats(mapreduce_df).set_index("step")
    maps = mapreduce_df[(mapreduce_df.kind == "step") & (mapreduce_df.step == "map")]
    lat = maps["latency_ms"].to_numpy(dtype=float)
    assert stats.loc["map", "count"] == 50
    assert stats.loc["map", "p50_ms"] == pytest.approx(np.quantile(lat, 0.5))
    assert stats.loc["map", "p95_ms"] == pytest.approx(np.quantile(lat, 0.95))
    assert list(stats.index) == ["split", "map", "reduce"]  # execution order


def test_latency_figure_marks_p50_and_p95(session_df):
    fig = latency(session_df)
    stats = latency_stats(session_df).set_index("step")
    p95 = next(t for t in fig.data if t.name == "p95")
    p50 = next(t for t in fig.data if t.name == "p50 (median)")
    got = dict(zip(p95.y, p95.x, strict=True))
    assert got["classify"] == pytest.approx(571.0)  # 10 router runs, 400..580 ms
    assert got["map"] == pytest.approx(stats.loc["map", "p95_ms"])
    assert dict(zip(p50.y, p50.x, strict=True))["classify"] == pytest.approx(490.0)
    ticks = dict(zip(fig.layout.yaxis.tickvals, fig.layout.yaxis.ticktext, strict=True))
    assert "p50 490 ms · p95 571 ms" in ticks["classify"]
    assert fig.layout.xaxis.title.text == "latency (ms)"
    boxes = [t for t in fig.data if t.type == "box"]
    assert len(boxes) == len(stats)
    classify = next(b for b in boxes if b.name == "classify")
    assert len(classify.x) == 10 and classify.boxpoints == "all"


def test_latency_by_model_uses_model_spans(session_df):
    stats = latency_stats(session_df, by="model").set_index("model")
    assert stats.loc["openai:gpt-4o-mini", "count"] == 61  # 10 classify + 50 map + outline
    fig = latency(session_df, by="model")
    assert "model spans" in fig.layout.title.text


def test_latency_by_pipeline_and_step(session_df):
    stats = latency_stats(session_df, by=["pipeline", "step"])
    assert ("support", "classify") in set(zip(stats.pipeline, stats.step, strict=True))
    fig = latency(session_df, by=["pipeline", "step"])
    assert "support · classify" in {b.name for b in fig.data if b.type == "box"}


def test_latency_100k_spans_uses_precomputed_quartiles(big_session):
    fig = latency(big_session, kind="all")
    boxes = [t for t in fig.data if t.type == "box"]
    assert boxes and all(b.x is None and b.q1 is not None for b in boxes)
    m = big_session[big_session.step == "map"]["latency_ms"].to_numpy(dtype=float)
    mb = next(b for b in boxes if b.name == "map")
    assert mb.median[0] == pytest.approx(np.quantile(m, 0.5))
    assert len(fig.to_json()) < 100_000


def test_latency_empty_selection_draws_a_note(chain_df):
    fig = latency(chain_df, kind="tool")
    assert fig.layout.annotations[0].text == "no spans to show"


def test_one_outlier_does_not_squash_the_boxes(session_df):
    # Issue 24: one 60 s call made every other box a line at zero on a linear axis.
    df = session_df.copy()
    slow = df.index[(df.kind == "step") & (df.step == "map")][0]
    df.loc[slow, "latency_ms"] = 60_000.0
    df.loc[slow, "end"] = df.loc[slow, "start"] + pd.Timedelta(seconds=60)
    fig = latency(df)
    p95 = latency_stats(df)["p95_ms"].max()
    assert fig.layout.xaxis.range[1] == pytest.approx(p95 * 1.3) and p95 < 10_000
    note = " ".join(a.text for a in fig.layout.annotations)
    assert "1 slower observation off the chart, up to 1.0 min" in note and "log_y=True" in note
    assert latency(df, log_y=True).layout.xaxis.range is None  # a log axis shows everything
    assert latency(session_df).layout.xaxis.range is None  # no outlier: nothing clipped
