"""The provider interface and the ``provider:model`` registry."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..exceptions import SpecError, UnknownModelError
from ._names import CHECKED_PROVIDERS, warn_if_misspelt
from ._sim import SimProvider
from ._types import Capabilities, ModelRequest, ModelResponse, OnDelta


@runtime_checkable
class Provider(Protocol):
    """A model vendor. One method to implement: turn our request into theirs and back.

    Providers do no retries, tracing or caching: those are the engine's. ``capabilities``
    says what else the provider does; one registered without it gets ``Capabilities()``
    (see :func:`register_provider`), and is then never passed ``on_delta``.

    >>> class Echo:
    ...     name = "echo"
    ...     simulated = True
    ...     capabilities = Capabilities(enforces_timeout=False)
    ...     async def request(self, model, request, on_delta=None):
    ...         return ModelResponse(text=request.messages[-1].content, simulated=True)
    >>> register_provider("echo", lambda **kw: Echo())
    """

    name: str
    simulated: bool
    capabilities: Capabilities

    async def request(
        self, model: str, request: ModelRequest, on_delta: OnDelta | None = None
    ) -> ModelResponse:
        """Send one request for ``model`` and return the normalised, complete response.

        With ``on_delta`` (only passed when ``capabilities.streaming``), stream: call
        ``on_delta(StreamDelta(...))`` for each chunk as it arrives, then still return the
        whole response. A stream that breaks off raises a retryable :class:`ProviderError`.
        """
        ...


class ModelTraits:
    """A resolved model's facts the call path reads on every call (see ``Model.traits``)."""

    __slots__ = ("caps", "id", "simulated")

    def __init__(self, id: str, simulated: bool, caps: Capabilities):
        self.id = id
        self.simulated = simulated
        self.caps = caps


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
    _traits: ModelTraits | None = field(default=None, init=False, repr=False, compare=False,
                                        hash=False)

    @property
    def traits(self) -> ModelTraits:
        """What every call to this model reads (id, simulated, capabilities), worked out at
        its first call and kept with the model (a model is immutable; so is its provider's
        declaration)."""
        t = self._traits
        if t is None:
            t = ModelTraits(self.id, bool(self.provider.simulated),
                            _capabilities(self.provider))
            object.__setattr__(self, "_traits", t)  # a cache, not a change of the model
        return t

    @property
    def id(self) -> str:
        return f"{self.provider_name}:{self.name}"

    @property
    def simulated(self) -> bool:
        return bool(self.provider.simulated)

    @property
    def capabilities(self) -> Capabilities:
        """What the provider declares it can do (``Capabilities()`` if it declares nothing).

        >>> resolve_model("sim:echo").capabilities.streaming
        True
        """
        return _capabilities(self.provider)

    def check(self) -> None:
        """Raise now what the first call would (a missing key, an unknown sim name), making no
        call. A provider without a ``check(model)`` method has nothing to check."""
        check = getattr(self.provider, "check", None)  # optional on the protocol: one place
        if check is not None:
            check(self.name)

    @property
    def priced_as(self) -> str | None:
        """The ``provider:model`` a sim model's cost is reported as, if it borrows one.

        >>> from orchnb.models import sim_model
        >>> _ = sim_model("borrowing", priced_as="openai:gpt-4o-mini")
        >>> resolve_model("sim:borrowing").priced_as
        'openai:gpt-4o-mini'
        """
        if isinstance(self.provider, SimProvider):
            return self.provider.priced_as(self.name)
        return None

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickled as its model string (pipelines shipped to Ray workers): the worker resolves
        # its own provider, SDK client and key; no client, and never a key, is serialised.
        return resolve_model, (self.id,)

    def __repr__(self) -> str:
        tag = " (simulated)" if self.simulated else ""
        return f"Model({self.id!r}){tag}"


_FACTORIES: dict[str, Any] = {}
_INSTANCES: dict[tuple[str, tuple], Provider] = {}
_MODEL_RE = re.compile(r"^([a-z][a-z0-9_\-]*):(\S+)$")
_ENTRY_POINTS_LOADED: list[bool] = []


@contextlib.contextmanager
def fresh_providers() -> Iterator[None]:
    """Within the block, providers are made anew (from the environment as it is then), and the
    ones made before come back after it: for tests and benchmarks that point the SDKs at
    another server for a while.

    >>> with fresh_providers():
    ...     pass
    """
    global _INSTANCES
    saved, _INSTANCES = _INSTANCES, {}
    try:
        yield
    finally:
        _INSTANCES = saved


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


def _capabilities(provider: Any) -> Capabilities:
    """The one place that decides what a provider can do: what it declares, else nothing."""
    try:
        declared = provider.capabilities
    except AttributeError:
        return _UNDECLARED
    if not isinstance(declared, Capabilities):
        raise SpecError(
            f"provider {provider.name!r}: 'capabilities' must be an orchnb.models.Capabilities, "
            f"got {type(declared).__name__}; declare e.g. Capabilities(tools=True) or leave it "
            f"out to get Capabilities() (nothing beyond request)"
        )
    return declared


_UNDECLARED = Capabilities()


def register_provider(name: str, factory: Any) -> None:
    """Register a provider factory under ``name`` so ``name:model`` strings resolve to it.

    ``factory(**options)`` returns an object with ``name``, ``simulated`` and
    ``async request(model, request)``; declaring ``capabilities`` (a :class:`Capabilities`)
    is optional. Without it the provider gets ``Capabilities()``, everything False: the
    engine enforces its timeouts, never streams to it (``request`` keeps its two-argument
    form), agents use text-mode tools and it cannot embed.
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
        _capabilities(inst)  # a malformed declaration fails here, not mid-run
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
    if provider_name in CHECKED_PROVIDERS:
        warn_if_misspelt(provider_name, name)  # a typo warns when the pipeline is defined
    return Model(provider=provider, provider_name=provider_name, name=name)


COMPATIBLE_CAPABILITIES = Capabilities(
    tools=False, streaming=True, structured_output=False, embeddings=True, enforces_timeout=True
)
"""What an :func:`openai_compatible` server is assumed to do: tool calling depends on the
served model, so agents default to text-mode tools there unless told otherwise."""


def openai_compatible(name: str, base_url: str, *, api_key: str | None = None,
                      api_key_env: str | None = None,
                      capabilities: Capabilities = COMPATIBLE_CAPABILITIES) -> None:
    """Register an OpenAI-compatible server (Ollama, vLLM, llama.cpp...) as provider ``name``.

    The key is ``api_key``, else the variable ``api_key_env`` (required then); with neither, the
    server needs no key and none of yours is sent (a placeholder is). Errors name the model
    as ``name:model`` and the server's URL.

    ``capabilities`` defaults to :data:`COMPATIBLE_CAPABILITIES` (no native tools); pass
    ``dataclasses.replace(COMPATIBLE_CAPABILITIES, tools=True)`` for a server whose models
    call tools.

    >>> openai_compatible("ollama", "http://localhost:11434/v1", api_key="ollama")
    >>> resolve_model("ollama:llama3.2").id
    'ollama:llama3.2'
    """
    from ._redact import remember_secret

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][\w.-]*", name):
        raise SpecError(f"openai_compatible(name=...) must be a provider name such as 'ollama' "
                        f"(letters, digits, '_', '.', '-'; no ':'), not {name!r}")
    if not isinstance(base_url, str) or not re.match(r"https?://\S+$", base_url):
        raise SpecError(f"openai_compatible('{name}', base_url=...) must be an http(s) URL such "
                        f"as 'http://localhost:11434/v1', not {base_url!r}")
    remember_secret(api_key)  # scrubbed from errors and traces even before the first call

    def make(**options: Any) -> Provider:
        from ._openai import OpenAIProvider

        # The variable is read at each call (set in a running kernel, it takes effect).
        return OpenAIProvider(**{"base_url": base_url, "api_key": api_key,
                                 "capabilities": capabilities, "name": name,
                                 "key_variable": api_key_env, **options})

    register_provider(name, make)
