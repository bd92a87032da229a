"""The engine over real HTTP: the openai and anthropic SDKs against the loopback FakeProvider."""

from __future__ import annotations

import time

import pytest

import orchnb
from orchnb import (
    CallTimeoutError,
    Chain,
    MissingAPIKeyError,
    ProviderError,
    RetryPolicy,
    Step,
)
from orchnb.testing import FakeReply

FAST_RETRY = RetryPolicy(max_attempts=3, backoff=0.01, max_backoff=0.05)


def brief(**options) -> Chain:
    return Chain("brief", [
        Step("summarize", "openai:gpt-4o-mini", "Summarize: {{ input }}"),
        Step("classify", "anthropic:claude-haiku-4-5", "Kind? {{ steps.summarize }}"),
    ], retry=FAST_RETRY, **options)


def test_chain_over_both_sdks_records_usage_and_cost(fake_env):
    fake_env.script([FakeReply(text="A lease.", input_tokens=120, output_tokens=5,
                               cached_tokens=100),
                     FakeReply(text="contract", input_tokens=30, output_tokens=2)])
    run = brief()("a long lease agreement")
    assert run.output == "contract"
    models = run.trace.df[run.trace.df.kind == "model"].set_index("step")
    assert models.loc["summarize", "provider"] == "openai"
    assert models.loc["summarize", "cached_tokens"] == 100
    assert models.loc["classify", "input_tokens"] == 30
    assert models.priced.all() and (models.cost_usd > 0).all()
    assert not models.simulated.any()
    apis = [r.api for r in fake_env.requests]
    assert apis == ["openai", "anthropic"]


def test_429_is_retried_after_the_servers_retry_after(fake_env):
    fake_env.fail_next(2, "429", retry_after=0.3)
    t = time.perf_counter()
    run = brief()("doc")
    elapsed = time.perf_counter() - t
    assert run.status == "ok"
    first = run.trace.df[(run.trace.df.kind == "model") & (run.trace.df.step == "summarize")]
    assert first.attempt.iloc[0] == 3
    assert elapsed >= 0.55  # two waits of Retry-After (0.3 s), not the 0.01 s backoff


def test_500s_that_outlast_retries_fail_with_step_and_keep_the_trace(fake_env):
    run = brief(cache=False).start("doc")
    run.step()  # the openai step succeeds
    fake_env.fail_next(3, "500")
    with pytest.raises(ProviderError) as info:
        run.resume()
    e = info.value
    assert e.status == 500 and e.step == "classify"
    assert "classify" in str(e) and "3 attempts" in str(e)
    assert e.run.status == "error"
    stored = orchnb.traces(run_id=e.run.id)
    assert stored.query("kind == 'model' and step == 'summarize'").status.iloc[0] == "ok"
    failed = stored.query("kind == 'model' and step == 'classify'")
    assert failed.status.iloc[0] == "error" and failed.attempt.iloc[0] == 3
    assert stored.query("kind == 'run'").status.iloc[0] == "error"


def test_non_retryable_400_fails_at_once(fake_env):
    fake_env.fail_next(1, "400")
    with pytest.raises(ProviderError) as info:
        brief(cache=False)("doc")
    assert info.value.status == 400 and not info.value.retryable
    assert info.value.run.trace.df.query("kind == 'model'").attempt.iloc[0] == 1
    assert len(fake_env.requests) == 1


def test_timeout_is_retried_then_reported(fake_env):
    fake_env.fail_next(3, "timeout", hang=2.0)
    pipe = Chain("slow", [Step("a", "openai:gpt-4o-mini", "{{ input }}")], retry=FAST_RETRY,
                 timeout=0.3, cache=False)
    with pytest.raises(CallTimeoutError) as info:
        pipe("doc")
    assert "0.3s" in str(info.value) and "3 attempts" in str(info.value)
    assert info.value.run.trace.df.query("kind == 'model'").attempt.iloc[0] == 3


def test_malformed_body_is_retried(fake_env):
    fake_env.fail_next(1, "malformed")
    fake_env.script(["fine"])
    pipe = Chain("m", [Step("a", "openai:gpt-4o-mini", "{{ input }}")], retry=FAST_RETRY,
                 cache=False)
    run = pipe("doc")
    assert run.output == "fine"
    assert run.trace.df.query("kind == 'model'").attempt.iloc[0] == 2


def test_missing_key_names_the_variable(monkeypatch, fake_env):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingAPIKeyError) as info:
        Chain("k", [Step("a", "openai:gpt-4o-mini", "x")], cache=False)("doc")
    assert info.value.variable == "OPENAI_API_KEY"
    assert "OPENAI_API_KEY" in str(info.value) and "sim:" in str(info.value)


def test_api_key_never_appears_in_traces_or_errors(monkeypatch, fake_env):
    secret = "sk-very-secret-123456"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    fake_env.fail_next(3, "500")
    pipe = Chain("s", [Step("a", "openai:gpt-4o-mini", "{{ input }}")], retry=FAST_RETRY,
                 cache=False)
    with pytest.raises(ProviderError) as info:
        pipe("doc")
    df = orchnb.traces()
    assert secret not in str(info.value) and secret not in repr(info.value.run)
    assert not df.astype(str).apply(lambda col: col.str.contains(secret)).any().any()


def test_openai_compatible_server_by_base_url(fake_env, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    orchnb.openai_compatible("local", fake_env.openai_base_url, api_key="sk-local")
    fake_env.script(["from the local server"])
    run = Chain("l", [Step("a", "local:smol", "{{ input }}")], cache=False)("hi")
    assert run.output == "from the local server"
    span = run.trace.df.query("kind == 'model'").iloc[0]
    assert span.provider == "local" and not span.priced
    assert fake_env.requests[0].model == "smol"
