"""What every SDK-backed provider promises, checked for openai and anthropic alike."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from orchnb.exceptions import CallTimeoutError, MissingAPIKeyError, ProviderError
from orchnb.models import Message, ModelRequest
from orchnb.models._anthropic import AnthropicProvider
from orchnb.models._openai import OpenAIProvider


@dataclass
class Vendor:
    cls: type
    key_var: str
    base_var: str
    url_attr: str


VENDORS = {
    "openai": Vendor(OpenAIProvider, "OPENAI_API_KEY", "OPENAI_BASE_URL", "openai_base_url"),
    "anthropic": Vendor(AnthropicProvider, "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                        "anthropic_base_url"),
}


@pytest.fixture(params=list(VENDORS))
def vendor(request) -> Vendor:
    return VENDORS[request.param]


def ask(text: str = "hi", **kw) -> ModelRequest:
    return ModelRequest([Message("user", text)], **kw)


def make(vendor: Vendor, fake, **kw):
    return vendor.cls(api_key=kw.pop("api_key", "sk-test"),
                      base_url=getattr(fake, vendor.url_attr), **kw)


def test_slow_answer_is_a_call_timeout(vendor, fake):
    fake.fail_next(1, "timeout", hang=3)
    with pytest.raises(CallTimeoutError, match=r"within 0\.2s"):
        asyncio.run(make(vendor, fake).request("m", ask(timeout=0.2)))


def test_missing_key_is_reported_at_the_first_request_naming_the_variable(vendor, fake):
    p = vendor.cls(base_url=getattr(fake, vendor.url_attr))  # constructing needs no key
    with pytest.raises(MissingAPIKeyError) as info:
        asyncio.run(p.request("m", ask()))
    assert info.value.variable == vendor.key_var and vendor.key_var in str(info.value)
    assert fake.requests == []


def test_sdk_environment_variables_are_honoured(vendor, fake, monkeypatch):
    monkeypatch.setenv(vendor.key_var, "sk-from-env")
    monkeypatch.setenv(vendor.base_var, getattr(fake, vendor.url_attr))
    p = vendor.cls()
    assert getattr(fake, vendor.url_attr) in repr(p)
    assert asyncio.run(p.request("m", ask("env"))).text == "fake reply to: env"


def test_api_key_never_appears_in_errors_or_repr(vendor, fake):
    secret = "sk-very-secret-0123456789"
    p = make(vendor, fake, api_key=secret)
    fake.fail_next(1, "401")
    with pytest.raises(ProviderError) as info:
        asyncio.run(p.request("m", ask()))
    err = info.value
    assert err.status == 401 and not err.retryable and vendor.key_var in str(err)
    for text in (str(err), repr(err), repr(p), str(err.__cause__)):
        assert secret not in text
