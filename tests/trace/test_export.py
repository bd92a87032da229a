"""Exports: Parquet and CSV round trips, OpenTelemetry spans with GenAI attributes."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from orchnb.trace import spans_to_frame
from orchnb.trace._export import to_csv, to_otel, to_parquet
from orchnb.trace._span import Span

T0 = 1_700_000_000.0


def _trace() -> pd.DataFrame:
    def span(sid, parent, kind, step, a, z, **kw):
        return Span(run_id="r1", span_id=sid, parent_id=parent, pipeline="support",
                    pattern=kw.pop("pattern", "router"), step=step, kind=kind,
                    status=kw.pop("status", "ok"), start=T0 + a, end=T0 + z,
                    latency_ms=(z - a) * 1000, **kw)

    return spans_to_frame([
        span("run", None, "run", "support", 0, 3, output="done"),
        span("rt", "run", "pattern", "triage", 0, 3, route="billing", raw_label="Billing",
             confidence=0.9),
        span("cl", "rt", "step", "classify", 0, 1),
        span("m1", "cl", "model", "classify", 0.1, 0.9, provider="openai",
             model="openai:gpt-4o-mini", input_tokens=120, output_tokens=3, cached_tokens=64,
             cost_usd=0.0001, priced=True, attempt=2, input="secret prompt", output="billing"),
        span("ag", "rt", "pattern", "helper", 1, 3, pattern="agent"),
        span("t1", "ag", "tool", "helper", 1.2, 1.5, tool="lookup", status="error",
             error="ToolError: lookup failed", pattern="agent"),
        span("m2", "ag", "model", "helper", 1.5, 2.9, provider="anthropic",
             model="anthropic:claude-x", input_tokens=50, output_tokens=20,
             cost_usd=float("nan"), priced=False, pattern="agent"),
    ])


def test_parquet_round_trip_keeps_dtypes(tmp_path):
    df = _trace()
    path = to_parquet(df, tmp_path / "t.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert str(back["start"].dtype).startswith("datetime64") and str(back["start"].dt.tz) == "UTC"
    assert str(back["input_tokens"].dtype) == "Int64"
    assert back["cost_usd"].isna().sum() == df["cost_usd"].isna().sum()


def test_csv_writes_every_span_with_iso_times(tmp_path):
    df = _trace()
    path = to_csv(df, tmp_path / "t.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    assert back.loc[0, "start"].startswith("2023-11-14T22:13:20")
    assert pd.isna(back.loc[back.span_id == "m2", "cost_usd"]).all()  # unpriced stays empty


@pytest.fixture
def exporter():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    return provider, exp


def _by_id(exp):
    return {s.attributes["orchnb.span_id"]: s for s in exp.get_finished_spans()}


def test_to_otel_preserves_tree_times_and_status(exporter):
    provider, exp = exporter
    assert to_otel(_trace(), provider) == 7
    spans = _by_id(exp)
    assert len(spans) == 7
    assert spans["run"].parent is None
    ids = {k: s.context.span_id for k, s in spans.items()}
    for child, parent in [("rt", "run"), ("cl", "rt"), ("m1", "cl"), ("t1", "ag"), ("ag", "rt")]:
        assert spans[child].parent.span_id == ids[parent]
    assert len({s.context.trace_id for s in spans.values()}) == 1
    assert spans["m1"].start_time == pytest.approx(int((T0 + 0.1) * 1e9), abs=1000)
    assert spans["m1"].end_time == pytest.approx(int((T0 + 0.9) * 1e9), abs=1000)
    from opentelemetry.trace import SpanKind, StatusCode

    assert spans["t1"].status.status_code == StatusCode.ERROR
    assert spans["t1"].status.description == "ToolError: lookup failed"
    assert spans["t1"].attributes["error.type"] == "ToolError"
    assert spans["m1"].status.status_code == StatusCode.OK
    assert spans["m1"].kind == SpanKind.CLIENT


def test_to_otel_uses_genai_semantic_conventions(exporter):
    provider, exp = exporter
    to_otel(_trace(), provider)
    spans = _by_id(exp)
    m1 = spans["m1"].attributes
    assert spans["m1"].name == "chat gpt-4o-mini"
    assert m1["gen_ai.operation.name"] == "chat"
    assert m1["gen_ai.request.model"] == "gpt-4o-mini"
    assert m1["gen_ai.provider.name"] == "openai"
    # deprecated (gen_ai.system), or not known to orchnb (response model, conversation id)
    for gone in ("gen_ai.system", "gen_ai.response.model", "gen_ai.conversation.id",
                 "gen_ai.prompt", "gen_ai.completion"):
        assert not any(gone in s.attributes for s in spans.values()), gone
    assert (m1["gen_ai.usage.input_tokens"], m1["gen_ai.usage.output_tokens"]) == (120, 3)
    assert m1["gen_ai.usage.cache_read.input_tokens"] == 64
    assert m1["orchnb.cost_usd"] == pytest.approx(0.0001) and m1["orchnb.attempt"] == 2
    t1 = spans["t1"].attributes
    assert t1["gen_ai.operation.name"] == "execute_tool" and t1["gen_ai.tool.name"] == "lookup"
    assert spans["t1"].name == "execute_tool lookup"
    ag = spans["ag"].attributes
    assert ag["gen_ai.operation.name"] == "invoke_agent" and ag["gen_ai.agent.name"] == "helper"
    run = spans["run"].attributes
    assert run["gen_ai.operation.name"] == "invoke_workflow"
    assert run["gen_ai.workflow.name"] == "support"
    assert spans["rt"].attributes["orchnb.route"] == "billing"
    m2 = spans["m2"].attributes
    assert "orchnb.cost_usd" not in m2 and m2["orchnb.priced"] is False  # unpriced, not 0
    assert spans["cl"].name == "step classify"


def test_to_otel_leaves_content_out_unless_asked(exporter):
    provider, exp = exporter
    to_otel(_trace(), provider)
    assert not any("secret prompt" in str(v) for s in exp.get_finished_spans()
                   for v in s.attributes.values())
    assert not any(k.startswith("gen_ai.input") or k.startswith("gen_ai.output")
                   or k.startswith("gen_ai.tool.call") for s in exp.get_finished_spans()
                   for k in s.attributes)
    exp.clear()
    to_otel(_trace(), provider, include_content=True)
    spans = _by_id(exp)
    m1 = spans["m1"].attributes
    assert json.loads(m1["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "secret prompt"}]}]
    assert json.loads(m1["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "billing"}],
         "finish_reason": "stop"}]
    run = spans["run"].attributes
    assert json.loads(run["gen_ai.output.messages"])[0]["parts"][0]["content"] == "done"
    assert "orchnb.input" not in m1  # content travels once, under the conventions' names


def test_to_otel_roots_are_new_traces_per_run(exporter):
    provider, exp = exporter
    df = _trace()
    other = df.assign(run_id="r2")
    to_otel(pd.concat([df, other], ignore_index=True), provider)
    roots = [s for s in exp.get_finished_spans() if s.parent is None]
    assert len(roots) == 2
    assert len({s.context.trace_id for s in exp.get_finished_spans()}) == 2


def test_to_otel_without_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'orchnb\[otel\]'"):
        to_otel(_trace())


def test_mapping_of_embeddings_and_clipped_conversations():
    from orchnb.trace._export import _attributes

    emb = {"run_id": "r", "span_id": "e", "kind": "model", "step": "memory", "status": "ok",
           "provider": "sim", "model": "hash-embed", "input_tokens": 7, "output_tokens": 0,
           "meta": json.dumps({"embedding": True, "texts": 2}), "input": '["a", "b"]'}
    name, a = _attributes(emb, include_content=True)
    assert name == "embeddings hash-embed" and a["gen_ai.operation.name"] == "embeddings"
    assert "gen_ai.input.messages" not in a and a["orchnb.input"] == '["a", "b"]'
    clipped = '[{"role": "user", "content": "long… [99999 chars]'
    chat = {**emb, "meta": None, "input": clipped, "output": "ok"}
    name, a = _attributes(chat, include_content=True)
    assert name == "chat hash-embed"
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": clipped}]}]
    failed = {**chat, "status": "error", "error": "RateLimitError: 429 slow down"}
    _, a = _attributes(failed, include_content=True)
    assert a["error.type"] == "RateLimitError" and "gen_ai.output.messages" not in a
