"""API keys never leak: provider errors that echo the key, through every artefact of a run.

Canary keys are set the ways users set them (the SDKs' environment variables, ``api_key=`` of
an OpenAI-compatible provider); the loopback FakeProvider answers with each error status, in
JSON (the key in the message or in the type) and in plain text (a proxy quoting the headers).
Every artefact is then searched for the key: the exception (str, repr, traceback), run.error,
the run's HTML, run.trace.df, orchnb.traces(), the raw bytes of the SQLite files (WAL
included), to_csv and to_otel.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

import orchnb
from orchnb import Chain, RetryPolicy, Step
from orchnb.trace import get_store
from orchnb.trace._export import to_csv, to_otel

KEYS = {
    "openai": "sk-canaryOPENAI0123456789abcdefXYZ",
    "anthropic": "sk-ant-canaryANTHROPIC0123456789abcdef",
    # Not key-shaped: only knowing the configured key can scrub it.
    "compat": "compat-canary-0123456789abcdefghij",
}
MODELS = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-haiku-4-5",
          "compat": "compat:llama-3"}


def _body(kind: str, key: str):
    if kind == "json_message":
        return {"error": {"message": f"Incorrect API key provided: {key}.", "type": "auth"}}
    if kind == "json_type":
        return {"error": {"message": "denied", "type": f"invalid_key {key}"}}
    return f"<h1>Unauthorized</h1> Authorization: Bearer {key}; x-api-key: {key} ({key})"


@pytest.fixture
def canaries(fake_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["openai"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEYS["anthropic"])
    orchnb.openai_compatible("compat", fake_env.openai_base_url, api_key=KEYS["compat"])
    return fake_env


def _artefacts(error: BaseException, run, home, tmp_path) -> dict[str, str]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    out = {"str": str(error), "repr": repr(error),
           "traceback": "".join(traceback.format_exception(error)),
           "run.error": f"{run.error} {run.error!r}", "html": run._repr_html_(),
           "trace.df": run.trace.df.to_csv()}
    stored = orchnb.traces(run_id=run.id)
    assert (stored.status == "error").any()  # the failure itself was stored
    out["traces()"] = stored.to_csv()
    out["to_csv"] = to_csv(run.trace.df, tmp_path / "run.csv").read_text()
    exporter, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    to_otel(run.trace.df, provider, include_content=False)
    out["to_otel"] = " ".join(f"{s.status.description} {dict(s.attributes)}"
                              for s in exporter.get_finished_spans())
    get_store().close()  # everything on disk: the log, the table, the WAL
    files = _store_files(home)
    assert any(f.name.endswith("-wal") for f in files) or files
    for f in files:
        out[f.name] = f.read_bytes().decode("latin-1")
    return out


def _store_files(home: Path) -> list[Path]:
    """The store's files: the database, its WAL, and the files of its columnar copy."""
    return sorted(p for f in home.glob("traces.sqlite*")
                  for p in ([f] if f.is_file() else [c for c in f.iterdir() if c.is_file()]))


@pytest.mark.parametrize("body", ["json_message", "json_type", "text"])
@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "compat"])
def test_a_key_echoed_in_a_provider_error_reaches_no_artefact(canaries, orchnb_home, tmp_path,
                                                             provider, status, body):
    key = KEYS[provider]
    canaries.fail_next(1, str(status), body=_body(body, key), retry_after=0)
    pipe = Chain("leaky", [Step("ask", MODELS[provider], "Hello {{ input }}")],
                 retry=RetryPolicy(max_attempts=1), cache=False)
    with pytest.raises(orchnb.ProviderError) as info:
        pipe("there")
    assert info.value.status == status
    assert "[REDACTED]" in str(info.value)  # the message kept its shape, minus the key
    leaked = [name for name, text in _artefacts(info.value, info.value.run, orchnb_home,
                                                tmp_path).items() if key in text]
    assert leaked == []


def test_a_model_output_holding_a_key_is_scrubbed_in_the_store_and_exports(canaries,
                                                                          orchnb_home, tmp_path):
    canaries.script([f"the key is {KEYS['openai']} and {KEYS['compat']}"])
    run = Chain("echo", [Step("ask", MODELS["openai"], "{{ input }}")], cache=False)("hi")
    stored = orchnb.traces(run_id=run.id)
    assert "[REDACTED]" in stored.output.str.cat()
    assert KEYS["openai"] not in to_csv(run.trace.df, tmp_path / "x.csv").read_text()
    get_store().close()
    for f in _store_files(orchnb_home):
        data = f.read_bytes()
        assert KEYS["openai"].encode() not in data and KEYS["compat"].encode() not in data
