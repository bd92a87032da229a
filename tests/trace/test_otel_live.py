"""Live OpenTelemetry export: spans leave as they end, with GenAI attributes, off the run thread."""

from __future__ import annotations

import gzip
import json
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from orchnb import Agent, Chain, Step, export_live
from orchnb.models import SimModel
from orchnb.trace import OTelListener
from orchnb.trace._otel_live import _span_id, _trace_id, _traces_url


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def broken(city: str) -> str:
    """Always fails."""
    raise RuntimeError(f"no weather for {city}")


def _chain() -> Chain:
    return Chain("brief", [Step("summarize", "sim:echo", "Summarize: {{ input }}"),
                           Step("classify", "sim:echo", "Kind? {{ steps.summarize }}")])


def _agent(name: str, calls) -> Agent:
    SimModel(name, fn=Agent.sim_policy(calls, "It is {observation}.")).register()
    return Agent(name, f"sim:{name}", [add, broken])


def _run(pipe, text, **kw):
    exp = InMemorySpanExporter()
    listener = OTelListener(exporter=exp, **kw)
    run = pipe(text, cache=False, hooks=[listener])
    assert listener.flush(10)
    listener.close()
    return run, {s.attributes["orchnb.span_id"]: s for s in exp.get_finished_spans()}


def test_every_span_is_exported_in_one_trace_with_its_parent_and_times():
    run, spans = _run(_chain(), "an invoice")
    assert set(spans) == {s.span_id for s in run.trace.spans}
    assert {s.context.trace_id for s in spans.values()} == {_trace_id(run.id)}
    for s in run.trace.spans:
        out = spans[s.span_id]
        assert out.context.span_id == _span_id(run.id, s.span_id)
        if s.parent_id is None:
            assert out.parent is None
        else:
            assert out.parent.span_id == spans[s.parent_id].context.span_id
        assert out.start_time == int(s.start * 1e9) and out.end_time == int(s.end * 1e9)
        assert out.status.status_code == StatusCode.OK
    assert all(s.resource.attributes["service.name"] == "orchnb" for s in spans.values())


def test_chain_spans_follow_the_genai_conventions():
    run, spans = _run(_chain(), "an invoice")
    root = spans[run.trace.spans[-1].span_id]
    assert root.name == "invoke_workflow brief"
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["gen_ai.workflow.name"] == "brief"
    models = [s for s in run.trace.spans if s.kind == "model"]
    assert len(models) == 2
    for s in models:
        out = spans[s.span_id]
        a = out.attributes
        assert out.name == "chat echo" and out.kind == SpanKind.CLIENT
        assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"],
                a["gen_ai.request.model"]) == ("chat", "sim", "echo")
        assert a["gen_ai.usage.input_tokens"] == s.input_tokens > 0
        assert a["gen_ai.usage.output_tokens"] == s.output_tokens > 0
        assert a["orchnb.simulated"] is True
    steps = {spans[s.span_id].name for s in run.trace.spans if s.kind == "step"}
    assert steps == {"step summarize", "step classify"}


def test_agent_tool_and_error_spans():
    agent = _agent("live_ag", [("add", {"a": 2, "b": 3}), ("broken", {"city": "Oslo"})])
    _, spans = _run(agent, "2+3?", include_content=True)
    names = {s.name for s in spans.values()}
    assert {"invoke_agent live_ag", "execute_tool add", "execute_tool broken",
            "chat live_ag"} <= names
    root = next(s for s in spans.values() if s.parent is None)
    assert root.attributes["gen_ai.agent.name"] == "live_ag"
    tool = next(s for s in spans.values() if s.name == "execute_tool add")
    assert tool.attributes["gen_ai.tool.name"] == "add"
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"a": 2, "b": 3}
    assert tool.attributes["gen_ai.tool.call.result"] == "5"
    bad = next(s for s in spans.values() if s.name == "execute_tool broken")
    assert bad.status.status_code == StatusCode.ERROR
    assert "no weather for Oslo" in bad.status.description
    assert bad.attributes["error.type"]
    # the model's tool-call turn: output messages carry the call, finish reason tool_call
    first = min((s for s in spans.values() if s.name == "chat live_ag"), key=lambda s: s.start_time)
    out = json.loads(first.attributes["gen_ai.output.messages"])
    assert out[0]["finish_reason"] == "tool_call"
    assert out[0]["parts"] == [{"type": "tool_call", "name": "add", "arguments": {"a": 2, "b": 3}}]
    # later turns send the conversation: user text, assistant tool call, tool response
    last = max((s for s in spans.values() if s.name == "chat live_ag"), key=lambda s: s.start_time)
    sent = json.loads(last.attributes["gen_ai.input.messages"])
    assert [m["role"] for m in sent[:3]] == ["user", "assistant", "tool"]
    assert sent[1]["parts"][-1]["type"] == "tool_call"
    assert sent[2]["parts"][0]["type"] == "tool_call_response"


def test_prompts_and_outputs_only_with_include_content():
    run, spans = _run(_chain(), "secret invoice")
    for s in spans.values():
        assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.tool.call",
                                     "orchnb.input", "orchnb.output")) for k in s.attributes)
        assert not any("secret" in str(v) for v in s.attributes.values())
    run, spans = _run(_chain(), "secret invoice", include_content=True)
    model = spans[next(s.span_id for s in run.trace.spans if s.kind == "model")]
    assert json.loads(model.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Summarize: secret invoice"}]}]
    out = json.loads(model.attributes["gen_ai.output.messages"])
    assert out[0]["role"] == "assistant" and out[0]["finish_reason"] == "stop"


class _Blocked(InMemorySpanExporter):
    """An exporter stuck on a slow collector until released."""

    def __init__(self):
        super().__init__()
        self.release, self.entered = threading.Event(), threading.Event()

    def export(self, spans):
        self.entered.set()
        self.release.wait(30)
        return super().export(spans)


def test_a_stuck_collector_never_blocks_the_run():
    exp = _Blocked()
    listener = OTelListener(exporter=exp)
    try:
        run = _chain()("x", cache=False, hooks=[listener])
        assert run.status == "ok"  # finished while the export thread is stuck
        assert exp.entered.wait(10)
        assert not listener.flush(0.05)
        exp.release.set()
        assert listener.flush(10)
        assert len(exp.get_finished_spans()) == len(run.trace.spans)
        assert listener.exported == len(run.trace.spans) and listener.dropped == 0
    finally:
        exp.release.set()
        listener.close()


def test_a_full_queue_drops_and_counts_instead_of_waiting():
    exp = _Blocked()
    listener = OTelListener(exporter=exp, max_queue=1)
    try:
        run = _chain()("x", cache=False, hooks=[listener])
        assert run.status == "ok"
        assert listener.dropped >= 1
    finally:
        exp.release.set()
        listener.close()


def test_failed_exports_are_counted():
    class Down(InMemorySpanExporter):
        def export(self, spans):
            return SpanExportResult.FAILURE

    listener = OTelListener(exporter=Down())
    run = _chain()("x", cache=False, hooks=[listener])
    assert listener.flush(10)
    assert (listener.exported, listener.failed) == (0, len(run.trace.spans))
    listener.close()


def test_listener_ignores_unknown_keywords():
    listener = OTelListener(exporter=InMemorySpanExporter())
    run = _chain()("x", cache=False)
    for s in run.trace.spans:
        listener.on_span_end(span=s, run=run, something_new=1)
    assert listener.flush(10) and listener.exported == len(run.trace.spans)
    listener.close()


def test_traces_url():
    assert _traces_url("http://127.0.0.1:6006") == "http://127.0.0.1:6006/v1/traces"
    assert _traces_url("http://h:4318/") == "http://h:4318/v1/traces"
    assert _traces_url("https://h/custom/traces") == "https://h/custom/traces"


class _Collector(BaseHTTPRequestHandler):
    """A tiny OTLP/HTTP receiver: decodes each protobuf export request."""

    requests: ClassVar[list] = []

    def do_POST(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        type(self).requests.append((self.path, dict(self.headers), req))
        out = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    _Collector.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.requests
    server.shutdown()
    server.server_close()


def test_export_live_sends_otlp_http_until_closed(collector):
    url, requests = collector
    live = export_live(url, headers={"x-team": "red"}, service_name="notebook-1")
    try:
        run = _chain()("an invoice", cache=False)
        assert live.flush(10)
    finally:
        live.close()
    assert requests and all(path == "/v1/traces" for path, _, _ in requests)
    assert all(h.get("x-team") == "red" for _, h, _ in requests)
    spans = [s for _, _, r in requests for rs in r.resource_spans
             for ss in rs.scope_spans for s in ss.spans]
    resources = {a.value.string_value for _, _, r in requests for rs in r.resource_spans
                 for a in rs.resource.attributes if a.key == "service.name"}
    assert resources == {"notebook-1"}
    assert len(spans) == len(run.trace.spans)
    assert {s.trace_id for s in spans} == {_trace_id(run.id).to_bytes(16, "big")}
    chat = next(s for s in spans if s.name == "chat echo")
    attrs = {a.key: a.value for a in chat.attributes}
    assert attrs["gen_ai.usage.input_tokens"].int_value > 0
    assert attrs["gen_ai.provider.name"].string_value == "sim"
    n = len(requests)
    _chain()("after close", cache=False)  # unregistered: nothing more is sent
    assert len(requests) == n


def test_missing_exporter_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ImportError, match=r"pip install 'orchnb\[otel\]'"):
        OTelListener("http://127.0.0.1:1")


def test_a_dead_collector_is_said_once_and_flush_stays_bounded(caplog):
    import logging
    import socket
    import time

    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    caplog.set_level(logging.WARNING)
    listener = OTelListener(f"http://127.0.0.1:{port}")
    try:
        t0 = time.monotonic()
        for i in range(5):
            _chain()(f"x{i}", cache=False, hooks=[listener])
            assert listener.flush(30)
        elapsed = time.monotonic() - t0
    finally:
        listener.close(timeout=10)
    assert elapsed < 10, elapsed  # one export timeout (5 s), not one per batch
    assert listener.exported == 0 and listener.failed == 5 * 5
    text = [r.getMessage() for r in caplog.records]
    assert not [t for t in text if "Transient error" in t], text
    assert sum("did not take" in t for t in text) == 1, text


def test_openinference_kinds_and_values_sit_beside_the_genai_attributes():
    _, spans = _run(_chain(), "an invoice", include_content=True)
    kinds = {s.attributes["orchnb.kind"]: s.attributes["openinference.span.kind"]
             for s in spans.values()}
    assert kinds == {"run": "CHAIN", "step": "CHAIN", "model": "LLM"}
    for s in spans.values():
        assert s.attributes["input.value"] and s.attributes["output.value"], s.name
    model = next(s for s in spans.values() if s.attributes["orchnb.kind"] == "model")
    assert model.attributes["llm.model_name"] == "echo"
    assert model.attributes["llm.token_count.total"] == (
        model.attributes["gen_ai.usage.input_tokens"]
        + model.attributes["gen_ai.usage.output_tokens"])
    _, quiet = _run(_chain(), "an invoice")  # without include_content: kinds, no values
    assert all("input.value" not in s.attributes for s in quiet.values())
    assert all("openinference.span.kind" in s.attributes for s in quiet.values())
    _, agent = _run(_agent("oi-agent", [("add", {"a": 1, "b": 2})]), "1+2")
    by_kind = {s.attributes["orchnb.kind"]: s.attributes["openinference.span.kind"]
               for s in agent.values()}
    assert by_kind["tool"] == "TOOL" and by_kind["run"] == "AGENT"


@pytest.mark.parametrize("index", range(5))
def test_every_span_of_every_pattern_has_an_openinference_kind_input_and_output(index):
    # Phoenix shows "unknown" and "--" for spans without these (issue 24); agent iterations,
    # plans and team hand-offs record what they were given.
    from _every_pattern import every_pattern

    pipe, x = every_pattern()[index]
    run, spans = _run(pipe, x, include_content=True)
    assert run.status == "ok", run.error
    assert len(spans) == len(run.trace.spans)
    for s in spans.values():
        a = s.attributes
        assert a["openinference.span.kind"] in {"LLM", "TOOL", "AGENT", "CHAIN"}, s.name
        assert a.get("input.value") and a.get("output.value"), (s.name, dict(a))
