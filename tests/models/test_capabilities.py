"""Providers declare what they can do; the registry decides for those that declare nothing."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from orchnb.exceptions import SpecError
from orchnb.models import (
    COMPATIBLE_CAPABILITIES,
    Capabilities,
    Message,
    ModelRequest,
    ModelResponse,
    openai_compatible,
    register_provider,
    resolve_model,
)


@pytest.mark.parametrize(("model", "expected"), [
    ("openai:gpt-4o-mini", Capabilities(tools=True, streaming=True, structured_output=True,
                                        embeddings=True, enforces_timeout=True,
                                        service_tiers=True, prompt_cache=True)),
    ("anthropic:claude-haiku-4-5", Capabilities(tools=True, streaming=True,
                                                structured_output=True, embeddings=False,
                                                enforces_timeout=True, prompt_cache=True)),
    ("sim:echo", Capabilities(tools=True, streaming=True, structured_output=False,
                              embeddings=False, enforces_timeout=True)),
])
def test_builtin_providers_declare_their_capabilities(model, expected):
    m = resolve_model(model)
    assert m.capabilities == expected == m.provider.capabilities


def test_embeddings_capability_matches_an_embed_method():
    for name in ("openai:x", "anthropic:x", "sim:x"):
        m = resolve_model(name)
        assert m.capabilities.embeddings == callable(getattr(m.provider, "embed", None))


def test_capabilities_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Capabilities().tools = True  # type: ignore[misc]


def test_openai_compatible_servers_default_to_no_native_tools():
    openai_compatible("capsollama", "http://127.0.0.1:1/v1", api_key="x")
    assert resolve_model("capsollama:llama3.2").capabilities == COMPATIBLE_CAPABILITIES
    assert not COMPATIBLE_CAPABILITIES.tools and COMPATIBLE_CAPABILITIES.streaming
    tools = dataclasses.replace(COMPATIBLE_CAPABILITIES, tools=True)
    openai_compatible("capsvllm", "http://127.0.0.1:1/v1", api_key="x", capabilities=tools)
    assert resolve_model("capsvllm:qwen").capabilities.tools
    # Per instance: the openai provider itself is unchanged.
    assert resolve_model("openai:gpt-4o").capabilities.tools


class Plain:
    """A third-party provider of the old shape: name, simulated, two-argument request."""

    name, simulated = "plain", True

    async def request(self, model, request):
        return ModelResponse(text="plain:" + request.messages[-1].content, simulated=True)


def test_a_provider_without_capabilities_gets_the_safe_defaults():
    register_provider("capsplain", lambda **kw: Plain())
    m = resolve_model("capsplain:m")
    assert m.capabilities == Capabilities()
    assert not any(dataclasses.astuple(m.capabilities))
    # Never streamed to, it keeps working through its two-argument request.
    r = asyncio.run(m.provider.request(m.name, ModelRequest([Message("user", "hi")])))
    assert r.text == "plain:hi"
    assert m.priced_as is None and m.simulated


def test_a_malformed_capabilities_declaration_fails_at_resolution():
    class Bad(Plain):
        capabilities = ("tools",)

    register_provider("capsbad", lambda **kw: Bad())
    with pytest.raises(SpecError, match=r"must be an orchnb\.models\.Capabilities"):
        resolve_model("capsbad:m")


def test_a_declaring_third_party_provider_is_taken_at_its_word():
    class Streaming(Plain):
        capabilities = Capabilities(streaming=True)

    register_provider("capsstream", lambda **kw: Streaming())
    assert resolve_model("capsstream:m").capabilities == Capabilities(streaming=True)
