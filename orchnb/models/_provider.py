"""The provider interface and the ``provider:model`` registry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..exceptions import UnknownModelError
from ._types import ModelRequest, ModelResponse


@runtime_checkable
class Provider(Protocol):
    """A model vendor. One method to implement: turn our request into theirs and back.

    Providers do no retries, tracing or caching: those are the engine's.

    >>> class Echo:
    ...     name = "echo"
    ...     simulated = True
    ...     async def request(self, model, request):
    ...         return ModelResponse(text=request.messages[-1].content, simulated=True)
    >>> register_provider("echo", lambda **kw: Echo())
    """

    name: str
    simulated: bool

    async def request(self, model: str, request: ModelRequest) -> ModelResponse:
        """Send one request for ``model`` and return the normalised response."""
        ...


@dataclass(frozen=True, slots=True)
class Model:
    """A resolved ``provider:name`` model string.

    >>> m = resolve_model("sim:echo")
    >>> (m.provider_name, m.name, m.simulated)
    ('sim', 'echo', True)
    """

    provider: Provider
    provider_name: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.provider_name}:{self.name}"

    @property
    def simulated(self) -> bool:
        return bool(getattr(self.provider, "simulated", False))

    def __repr__(self) -> str:
        tag = " (simulated)" if self.simulated else ""
        return f"Model({self.id!r}){tag}"


_FACTORIES: dict[str, Any] = {}
_INSTANCES: dict[tuple[str, tuple], Provider] = {}
_MODEL_RE = re.compile(r"^([a-z][a-z0-9_\-]*):(\S+)$")
_ENTRY_POINTS_LOADED: list[bool] = []


class _Builtins:
    """Lazily-imported built-in providers (the SDKs are imported only when used)."""

    names: ClassVar[tuple[str, ...]] = ("openai", "anthropic", "sim")

    @staticmethod
    def make(name: str, **options: Any) -> Provider:
        if name == "openai":
            from ._openai import OpenAIProvider

            return OpenAIProvider(**options)
        if name == "anthropic":
            from ._anthropic import AnthropicProvider

            return AnthropicProvider(**options)
        from ._sim import SimProvider

        return SimProvider(**options)


def register_provider(name: str, factory: Any) -> None:
    """Register a provider factory under ``name`` so ``name:model`` strings resolve to it.

    Third-party packages can do the same through the ``orchnb.providers`` entry-point group.

    >>> register_provider("mine", lambda **options: MyProvider(**options))  # doctest: +SKIP
    """
    _FACTORIES[name] = factory
    for key in [k for k in _INSTANCES if k[0] == name]:
        del _INSTANCES[key]


def _load_entry_points() -> None:
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED.append(True)
    from importlib.metadata import entry_points

    for ep in entry_points(group="orchnb.providers"):
        _FACTORIES.setdefault(ep.name, ep.load())


def known_providers() -> list[str]:
    """Names usable before the colon of a model string."""
    _load_entry_points()
    return sorted(set(_Builtins.names) | set(_FACTORIES))


def get_provider(name: str, **options: Any) -> Provider:
    """The (shared) provider instance for ``name`` with these options."""
    key = (name, tuple(sorted(options.items())))
    inst = _INSTANCES.get(key)
    if inst is None:
        if name not in _FACTORIES:
            _load_entry_points()
        if name in _FACTORIES:
            inst = _FACTORIES[name](**options)
        elif name in _Builtins.names:
            inst = _Builtins.make(name, **options)
        else:
            raise UnknownModelError(
                f"unknown provider '{name}'; known providers: {', '.join(known_providers())}"
            )
        _INSTANCES[key] = inst
    return inst


def resolve_model(spec: str | Model, **options: Any) -> Model:
    """Resolve ``"provider:model"`` to a :class:`Model`; raises :class:`UnknownModelError`.

    ``options`` go to the provider's constructor (``base_url=...``, ``api_key=...``).
    No network call and no key check happens here: keys are checked at the first call, so
    a pipeline can be defined and validated offline.

    >>> resolve_model("openai:gpt-4o-mini").id
    'openai:gpt-4o-mini'
    """
    if isinstance(spec, Model):
        return spec
    if not isinstance(spec, str):
        raise UnknownModelError(f"a model must be a 'provider:model' string, got {spec!r}")
    m = _MODEL_RE.match(spec.strip())
    if not m:
        raise UnknownModelError(
            f"model {spec!r} is not of the form 'provider:model' "
            f"(e.g. 'openai:gpt-4o-mini', 'anthropic:claude-haiku-4-5', 'sim:echo')"
        )
    provider_name, name = m.group(1), m.group(2)
    provider = get_provider(provider_name, **options)
    return Model(provider=provider, provider_name=provider_name, name=name)


def openai_compatible(name: str, base_url: str, *, api_key: str | None = None,
                      api_key_env: str | None = None) -> None:
    """Register an OpenAI-compatible server (Ollama, vLLM, llama.cpp...) as provider ``name``.

    >>> openai_compatible("ollama", "http://localhost:11434/v1", api_key="ollama")
    >>> resolve_model("ollama:llama3.2").id
    'ollama:llama3.2'
    """
    import os

    from ._redact import remember_secret

    remember_secret(api_key)  # scrubbed from errors and traces even before the first call

    def make(**options: Any) -> Provider:
        from ._openai import OpenAIProvider

        key = api_key or (os.environ.get(api_key_env) if api_key_env else None)
        return OpenAIProvider(**{"base_url": base_url, "api_key": key, **options})

    register_provider(name, make)
