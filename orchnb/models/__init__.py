"""Models: providers (openai, anthropic, sim), the ``provider:model`` registry, pricing, usage."""

from ._preflight import preflight
from ._pricing import call_cost, cost_usd
from ._provider import (
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
    StreamDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

__all__ = [
    "Capabilities",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
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
    "register_provider",
    "resolve_model",
    "sim_model",
]
