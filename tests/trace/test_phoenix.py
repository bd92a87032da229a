"""A real Phoenix (arize-phoenix) receives live spans; Phoenix's own client reads them back.

The Phoenix server runs in its own virtual environment (it pins ``anthropic<2`` and importing it
takes seconds): ``scripts/setup_test_env.sh`` puts it in ``<venv>-phoenix``; ``ORCHNB_PHOENIX``
may name another ``phoenix`` executable. This venv needs only ``arize-phoenix-client``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchnb import Chain, Step, export_live
from orchnb.trace._otel_live import _trace_id

pytestmark = pytest.mark.slow

_PROJECT = "orchnb-live"


def _phoenix_exe() -> str | None:
    prefix = Path(sys.prefix)
    candidates = [os.environ.get("ORCHNB_PHOENIX"),
                  prefix.with_name(prefix.name + "-phoenix") / "bin" / "phoenix",
                  Path(sys.executable).with_name("phoenix")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    """A Phoenix server on 127.0.0.1 (free ports, a temporary working dir); its base URL."""
    exe = _phoenix_exe()
    if exe is None:
        pytest.skip("Phoenix is not installed: scripts/setup_test_env.sh installs it into "
                    "<venv>-phoenix (or set ORCHNB_PHOENIX to a `phoenix` executable)")
    pytest.importorskip("phoenix.client", reason="needs arize-phoenix-client in this venv")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http",
                        reason="needs pip install 'orchnb[otel]'")
    work = tmp_path_factory.mktemp("phoenix")
    port = _free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(work), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(_free_port()),
           "PHOENIX_TELEMETRY_ENABLED": "false"}
    url = f"http://127.0.0.1:{port}"
    with open(work / "server.log", "wb") as log:
        proc = subprocess.Popen([exe, "serve"], cwd=work, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120  # a cold start imports a lot; generous on busy CI
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (work / "server.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"phoenix serve did not come up on {url}:\n{tail}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _read_back(url: str, trace_id: str, want: int) -> list[dict]:
    from phoenix.client import Client

    client, spans = Client(base_url=url), []
    deadline = time.monotonic() + 30  # Phoenix ingests asynchronously
    while time.monotonic() < deadline:
        try:
            spans = client.spans.get_spans(project_identifier=_PROJECT, trace_ids=[trace_id],
                                           limit=1000)
        except Exception:  # the project appears with its first span
            spans = []
        if len(spans) >= want:
            return spans
        time.sleep(0.25)
    return spans


def test_live_spans_arrive_in_phoenix_with_tree_model_and_tokens(phoenix, fake_env):
    pipe = Chain("support", [
        Step("summarize", "sim:echo", "Summarize: {{ input }}"),
        Step("answer", "openai:gpt-4o-mini", "Answer briefly: {{ steps.summarize }}"),
    ])
    live = export_live(phoenix, headers={"x-project-name": _PROJECT}, include_content=True,
                       service_name="orchnb-tests")
    try:
        run = pipe("my invoice is wrong", cache=False)
        assert run.status == "ok", run.error
        assert live.flush(30)
    finally:
        live.close()
    assert live.failed == 0 and live.exported == len(run.trace.spans)

    got = _read_back(phoenix, f"{_trace_id(run.id):032x}", len(run.trace.spans))
    assert len(got) == len(run.trace.spans)
    by_orchnb = {s["attributes"]["orchnb.span_id"]: s for s in got}
    assert set(by_orchnb) == {s.span_id for s in run.trace.spans}
    for s in run.trace.spans:  # parent/child as in orchnb's trace
        back = by_orchnb[s.span_id]
        if s.parent_id is None:
            assert not back.get("parent_id")
            assert back["name"] == "invoke_workflow support"
        else:
            assert back["parent_id"] == by_orchnb[s.parent_id]["context"]["span_id"]

    for s in (s for s in run.trace.spans if s.kind == "model"):
        back = by_orchnb[s.span_id]
        attrs = back["attributes"]
        name = s.model
        assert back["name"] == f"chat {name}"
        assert back["span_kind"] == "LLM"  # Phoenix read gen_ai.operation.name = chat
        assert attrs["gen_ai.request.model"] == attrs["llm.model_name"] == name
        assert attrs["gen_ai.provider.name"] == s.provider
        assert attrs["gen_ai.usage.input_tokens"] == attrs["llm.token_count.prompt"]
        assert attrs["llm.token_count.prompt"] == s.input_tokens > 0
        assert attrs["llm.token_count.completion"] == s.output_tokens > 0
        # the prompt, through gen_ai.input.messages, shows as Phoenix's own message attributes
        assert attrs["llm.input_messages.0.message.role"] == "user"
    openai_span = next(s for s in run.trace.spans if s.provider == "openai")
    assert by_orchnb[openai_span.span_id]["attributes"]["llm.model_name"] == "gpt-4o-mini"


def test_phoenix_shows_a_kind_input_and_output_for_every_span_of_every_pattern(phoenix):
    # Issue 24: Phoenix showed workflow and step spans as kind "unknown" with "--" for input
    # and output; it reads OpenInference's openinference.span.kind, input.value, output.value.
    from _every_pattern import every_pattern

    live = export_live(phoenix, headers={"x-project-name": _PROJECT}, include_content=True,
                       service_name="orchnb-tests")
    try:
        runs = [pipe(x, cache=False) for pipe, x in every_pattern()]
        assert all(r.status == "ok" for r in runs), [r.error for r in runs]
        assert live.flush(30)
    finally:
        live.close()
    assert live.failed == 0
    for run in runs:
        got = _read_back(phoenix, f"{_trace_id(run.id):032x}", len(run.trace.spans))
        assert len(got) == len(run.trace.spans), run.pipeline
        for back in got:
            attrs, where = back["attributes"], (run.pipeline, back["name"])
            # Phoenix lifts openinference.span.kind into the span's own kind
            assert back["span_kind"] in {"LLM", "TOOL", "AGENT", "CHAIN"}, where
            assert attrs.get("input.value") and attrs.get("output.value"), (where, attrs)
