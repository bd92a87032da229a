"""A base URL or key changed in a running kernel takes effect; errors name the URL; an
OpenAI-compatible server that needs no key gets none of yours, and its errors name its models."""

from __future__ import annotations

import socket

import pytest

from orchnb import Chain, MissingAPIKeyError, ProviderError, Step, openai_compatible
from orchnb.models import _provider
from orchnb.testing import FakeProvider


@pytest.fixture(autouse=True)
def fresh_providers(monkeypatch):
    monkeypatch.setattr(_provider, "_INSTANCES", {})


def _pipe(model: str) -> Chain:
    return Chain("cfg", [Step("a", model, "{{ input }}")], cache=False, retry=None)


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_base_url_changed_in_the_kernel_is_used_by_the_next_call(monkeypatch):
    with FakeProvider(latency=0.0) as first, FakeProvider(latency=0.0) as second:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        monkeypatch.setenv("OPENAI_BASE_URL", first.openai_base_url)
        _pipe("openai:gpt-4o-mini")("one")
        monkeypatch.setenv("OPENAI_BASE_URL", second.openai_base_url)
        _pipe("openai:gpt-4o-mini")("two")
        assert len(first.requests) == 1 and len(second.requests) == 1


def test_a_refused_connection_names_the_url(monkeypatch):
    url = _dead_url()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(ProviderError) as info:
        _pipe("openai:gpt-4o-mini")("x")
    assert url in str(info.value) and "connection failed" in str(info.value)


def test_a_compatible_server_without_a_key_needs_none_and_never_gets_yours(monkeypatch):
    from orchnb.models._openai import NO_KEY

    with FakeProvider(latency=0.0) as server:
        openai_compatible("local", server.openai_base_url)  # the README's example
        run = _pipe("local:m")("hi")  # no OPENAI_API_KEY set (conftest)
        assert run.status == "ok" and len(server.requests) == 1
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-123456")
    assert _provider.resolve_model("local:m").provider._key() == NO_KEY


def test_errors_of_a_compatible_server_name_its_model_and_url():
    url = _dead_url()
    openai_compatible("local", url)
    with pytest.raises(ProviderError) as info:
        _pipe("local:m")("x")
    text = str(info.value)
    assert "local:m" in text and "openai:" not in text and url in text


def test_a_compatible_server_with_a_key_variable_names_that_variable(monkeypatch):
    monkeypatch.delenv("LOCAL_KEY", raising=False)
    openai_compatible("keyed", _dead_url(), api_key_env="LOCAL_KEY")
    with pytest.raises(MissingAPIKeyError) as info:
        _pipe("keyed:m")("x")
    assert "LOCAL_KEY" in str(info.value) and info.value.provider == "keyed"


def test_anthropic_follows_its_base_url_too(monkeypatch):
    with FakeProvider(latency=0.0) as first, FakeProvider(latency=0.0) as second:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", first.anthropic_base_url)
        _pipe("anthropic:claude-haiku-4-5")("one")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", second.anthropic_base_url)
        _pipe("anthropic:claude-haiku-4-5")("two")
        assert len(first.requests) == 1 and len(second.requests) == 1
