"""Models: providers (openai, anthropic, sim), the ``provider:model`` registry, pricing, usage."""

from ._batches import BatchAPI, BatchStatus, batch_api
from ._embed import (
    Embedder,
    HashEmbedder,
    ProviderEmbedder,
    SentenceTransformerEmbedder,
    resolve_embedder,
)
from ._preflight import preflight
from ._pricing import call_cost, cost_usd, price_ref
from ._provider import (
    COMPATIBLE_CAPABILITIES,
    Model,
    Provider,
    fresh_providers,
    get_provider,
    known_providers,
    openai_compatible,
    register_provider,
    resolve_model,
)
from ._redact import (
    needs_scrub,
    refresh_secrets,
    remember_secret,
    scrub_exception,
    scrub_secrets,
)
from ._sim import SimModel, SimProvider, get_sim_model, sim_model
from ._tokens import TokenCount, complete_usage, count_tokens, estimate_tokens
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
    "BatchAPI",
    "BatchStatus",
    "Capabilities",
    "Embedder",
    "HashEmbedder",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "OnDelta",
    "Provider",
    "ProviderEmbedder",
    "SentenceTransformerEmbedder",
    "SimModel",
    "SimProvider",
    "StreamDelta",
    "TokenCount",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "batch_api",
    "call_cost",
    "complete_usage",
    "cost_usd",
    "count_tokens",
    "estimate_tokens",
    "fresh_providers",
    "get_provider",
    "get_sim_model",
    "known_providers",
    "needs_scrub",
    "openai_compatible",
    "preflight",
    "price_ref",
    "refresh_secrets",
    "register_provider",
    "remember_secret",
    "resolve_embedder",
    "resolve_model",
    "scrub_exception",
    "scrub_secrets",
    "sim_model",
]
