"""Summary tables per run / pipeline / session, the styled table, and run comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchnb.viz import compare_runs, summary, summary_table


def test_summary_per_run_totals_errors_and_retries(session_df):
    s = summary(session_df)
    assert len(s) == 13 and s.index[0] == "chain-1"  # start order
    agent = s.loc["agent-1"]
    assert (agent.calls, agent.model_calls, agent.tool_calls) == (7, 4, 3)
    assert agent.errors == 1  # the failed tool call
    assert agent.retries == 3  # attempt 3 on a model call + attempt 2 on the tool call
    chain = s.loc["chain-1"]
    assert chain.unpriced_calls == 1
    assert chain.cost_usd == pytest.approx(0.00015 + 0.00092)
    assert chain.latency_ms == pytest.approx(3000)
    calls = session_df[(session_df.run_id == "mapreduce-1") & (session_df.kind == "model")]
    lat = calls["latency_ms"].to_numpy(dtype=float)
    assert s.loc["mapreduce-1", "call_p95_ms"] == pytest.approx(np.quantile(lat, 0.95))
    assert s.loc["router-0", "cached_tokens"] == 200


def test_summary_per_pipeline_and_session(session_df):
    p = summary(session_df, by="pipeline")
    assert p.loc["support", "runs"] == 10 and p.loc["support", "calls"] == 20
    assert p.loc["support", "run_p50_ms"] == pytest.approx(2000)
    sess = summary(session_df, by="session")
    assert sess.index.tolist() == ["all"]
    row = sess.loc["all"]
    assert (row.runs, row.calls, row.errors, row.retries, row.unpriced_calls) == (13, 81, 1, 3, 1)
    with_ids = session_df.assign(session_id=np.where(session_df.run_id.str.startswith("router"),
                                                     "s2", "s1"))
    assert summary(with_ids, by="session")["runs"].to_dict() == {"s1": 3, "s2": 10}
    with pytest.raises(ValueError, match="by must be"):
        summary(session_df, by="model")


def test_summary_all_unpriced_run_has_nan_cost(build):
    df = build.frame(build.chain_run())
    df = df[(df.kind != "model") | (df.model == "openai:ft-custom")]
    assert math.isnan(summary(df).loc["chain-1", "cost_usd"])


def test_summary_table_is_a_styler_with_units(session_df):
    sty = summary_table(session_df)
    assert type(sty).__name__ == "Styler"
    html = sty.to_html()
    assert "$0.00107" in html and "3.00 s" in html and "+ 1 unpriced call" in html
    assert "#D62728" in html  # the run with an error is flagged
    assert hasattr(sty, "_repr_html_")
    assert "by pipeline" in summary_table(session_df, by="pipeline").to_html()


def test_compare_runs_finds_first_output_divergence(build):
    df = build.frame(build.chain_run("a") + build.chain_run("b", t=9, draft_output="other"))
    cmp = compare_runs(df, ["a", "b"])
    assert cmp.index.tolist() == ["(run)", "outline", "draft", "polish"]
    assert cmp.attrs["first_divergence"] == "draft"
    assert cmp.attrs["divergence_reason"] == "output"
    assert cmp.loc["draft", ("output", "b")] == "other"
    assert cmp["diverges"].tolist() == [False, False, True, False]
    assert math.isnan(cmp.loc["polish", ("cost_usd", "a")])  # unpriced stays unknown
    assert cmp.loc["outline", ("latency_ms", "a")] == pytest.approx(800)


def test_compare_runs_route_divergence(router_df):
    cmp = compare_runs(router_df, ["router-0", "router-1"])
    assert cmp.attrs["first_divergence"] == "triage"
    assert cmp.attrs["divergence_reason"] == "route"
    assert cmp.loc["triage", ("route", "router-0")] == "billing"
    assert cmp.loc["triage", ("route", "router-1")] == "technical"
    same = compare_runs(router_df, ["router-0", "router-2"])
    assert same.attrs["first_divergence"] is None


def test_compare_runs_across_pipelines_aligns_by_step_name(build):
    spans = build.chain_run("a") + build.chain_run("b", t=9, polish_model="openai:gpt-4o")
    for s in spans:
        if s.run_id == "b" and s.step == "outline":
            s.step = "plan"
        if s.run_id == "b":
            s.pipeline = "summarize-v2"
    cmp = compare_runs(build.frame(spans), ["a", "b"])
    assert cmp.index.tolist() == ["(run)", "outline", "plan", "draft", "polish"]
    assert cmp.attrs["first_divergence"] == "outline"
    assert cmp.attrs["divergence_reason"] == "missing"
    assert cmp.loc["polish", ("cost_usd", "b")] > 0


def test_compare_runs_rejects_unknown_ids(session_df):
    with pytest.raises(ValueError, match="unknown run id"):
        compare_runs(session_df, ["chain-1", "zzz"])
    with pytest.raises(ValueError, match="at least two"):
        compare_runs(session_df, ["chain-1"])


def test_summary_starts_are_whole_seconds(build):
    df = build.frame(build.chain_run(t=0.123456789))
    s = summary(df)
    assert str(s["start"].iloc[0]) == "2023-11-14 22:13:20+00:00"  # no nanoseconds on show
    assert str(summary(df, by="pipeline")["first_start"].iloc[0]) == "2023-11-14 22:13:20+00:00"


def test_a_run_still_marked_running_reads_unfinished(build):
    """A paused run (pipe.start, a playground) has only its start-time span in the store, with
    status running; it must not read as running when nothing is running."""
    b = build.Builder("paused-1", "triage")
    b.root.status = "running"
    b.root.end, b.root.latency_ms = None, None
    s = b.span(b.root, "step", "router", "classify", 0.0, 0.01)
    b.model(s, "router", 0.0, 0.01, "openai:gpt-4o-mini", 10, 2)
    df = build.frame(b.spans + build.chain_run())
    t = summary(df)
    assert t.loc["paused-1", "status"] == "unfinished"
    assert t.loc["chain-1", "status"] == "ok"
    html = summary_table(df).to_html()
    assert ">unfinished<" in html and "running" not in html
    assert "unfinished: not ended when read (paused at a step" in html
    assert "unfinished" not in summary_table(build.frame(build.chain_run())).to_html()


def test_summary_table_says_one_run_not_one_runs(build):
    html = summary_table(build.frame(build.chain_run())).to_html()
    assert "· 1 run ·" in html
