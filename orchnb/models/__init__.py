"""Models: providers (openai, anthropic, sim), the ``provider:model`` registry, pricing, usage."""

from ._preflight import preflight
from ._pricing import call_cost, cost_usd, price_ref
from ._provider import (
    COMPATIBLE_CAPABILITIES,
    Model,
    Provider,
    get_provider,
    known_providers,
    openai_compatible,
    register_provider,
    resolve_model,
)
from ._sim import SimModel, SimProvider, estimate_tokens, get_sim_model, sim_model
from ._types import (
    Capabilities,
    Message,
    ModelRequest,
    ModelResponse,
    OnDelta,
    StreamDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

__all__ = [
    "COMPATIBLE_CAPABILITIES",
    "Capabilities",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "OnDelta",
    "Provider",
    "SimModel",
    "SimProvider",
    "StreamDelta",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "call_cost",
    "cost_usd",
    "estimate_tokens",
    "get_provider",
    "get_sim_model",
    "known_providers",
    "openai_compatible",
    "preflight",
    "price_ref",
    "register_provider",
    "resolve_model",
    "sim_model",
]
