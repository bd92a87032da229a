"""Models: providers (openai, anthropic, sim), the ``provider:model`` registry, pricing, usage."""

from ._pricing import cost_usd
from ._provider import (
    Model,
    Provider,
    get_provider,
    known_providers,
    openai_compatible,
    register_provider,
    resolve_model,
)
from ._redact import needs_scrub, refresh_secrets, remember_secret, scrub_secrets
from ._sim import SimModel, SimProvider, estimate_tokens, get_sim_model, sim_model
from ._types import Message, ModelRequest, ModelResponse, ToolCall, ToolSpec, Usage

__all__ = [
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "Provider",
    "SimModel",
    "SimProvider",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "cost_usd",
    "estimate_tokens",
    "get_provider",
    "get_sim_model",
    "known_providers",
    "needs_scrub",
    "openai_compatible",
    "refresh_secrets",
    "register_provider",
    "remember_secret",
    "resolve_model",
    "scrub_secrets",
    "sim_model",
]
