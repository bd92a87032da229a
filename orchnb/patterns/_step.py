"""The leaves of a pipeline: LLM steps and Python steps (``Step``, ``FunctionStep``), and what
every node is (``Node``). Patterns, preview, YAML and fork all build on these; nothing here knows
a pattern."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from ..engine import (
    MAX_TOKENS_KNOB,
    RunContext,
    SpanHandle,
    as_text,
    check_number,
    reset_levers,
    set_levers,
)
from ..exceptions import SpecError, TemplateError
from ..memory import as_memory, recall
from ..models import Message, Model, cache_ttl, check_service_tier, resolve_model
from ._structured import OutputSchema, call_structured
from ._template import KNOWN_VARIABLES, Prompt

Vars = dict[str, Any]
Body = Callable[[RunContext, Any], Awaitable[Any]]


class Edits:
    """How many attributes of pipelines and steps have been assigned so far: what a pipeline
    resolves for its runs (its models, its options) is reused until the next assignment."""

    count = 0


class Tracked:
    """A pipeline or step whose attribute assignments count as edits (see :class:`Edits`)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        Edits.count += 1


class Node(Protocol):
    """Anything a pattern can hold: an LLM step, a Python step or another pattern."""

    name: str

    async def invoke(self, ctx: RunContext, input: Any, vars: Vars) -> Any: ...


class Step(Tracked):
    """An LLM step: a prompt template rendered and sent to a model.

    With ``memory=`` (an :class:`~orchnb.Memory` or its name), what the memory recalls for the
    step's input is ``{{ memory }}`` in its templates (a ``memory`` span in the trace).

    >>> s = Step("summarize", "sim:echo", "Summarize: {{ input }}")
    >>> s.model.id
    'sim:echo'
    """

    kind = "llm"
    model_attrs: ClassVar[tuple[str, ...]] = ("model",)
    """Attributes holding this node's models (preflight checks them before a run)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {"max_tokens": 1}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""

    def __init__(self, name: str, model: str | Model, prompt: str | Prompt, *,
                 system: str | Prompt | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, parse: Callable[[str], Any] | None = None,
                 stream: bool = False, output: Any = None, memory: Any = None,
                 fallback: Sequence[str | Model] = (), cache_prompt: bool | str = False,
                 service_tier: str | None = None):
        check_name(name, "Step")
        owner = f"step '{name}': "
        self.name = name
        self.model = resolve_model(model)
        if isinstance(fallback, (str, Model)):
            fallback = [fallback]
        self.fallback = tuple(resolve_model(m) for m in fallback)
        """Models tried in order once this step's retries on ``model`` are spent."""
        check_number(temperature, f"{owner}temperature", hint="usually 0 to 2")
        check_number(max_tokens, f"{owner}max_tokens", minimum=1, integer=True,
                     maximum=MAX_TOKENS_KNOB)
        if parse is not None and not callable(parse):
            raise SpecError(f"{owner}parse must be a function of the response text, "
                            f"not {parse!r}")
        if not isinstance(stream, bool):
            raise SpecError(f"{owner}stream must be True or False, not {stream!r}")
        self.output = None if output is None else OutputSchema(output, owner=owner)
        """The answer's schema (``output=PydanticModel`` or a JSON schema dict): the step's
        output is then the validated object (see :mod:`._structured`)."""
        if self.output is not None and parse is not None:
            raise SpecError(f"{owner}give output= or parse=, not both", key="output")
        allowed = KNOWN_VARIABLES | {"memory"}  # checked against memory= just below
        self.prompt = prompt if isinstance(prompt, Prompt) else Prompt(
            prompt, owner=owner, allowed=allowed)
        self.system = system if system is None or isinstance(system, Prompt) else Prompt(
            system, where="system", owner=owner, allowed=allowed)
        self.memory = None if memory is None else as_memory(memory)
        """The :class:`~orchnb.Memory` this step recalls from, if any."""
        _check_memory_use(owner, self.memory, self.prompt, self.system)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.parse = parse
        self.stream = stream
        """Publish this step's text as it arrives (``pipe.stream`` / a live cell output)."""
        self.cache_prompt = cache_ttl(cache_prompt, f"{owner}cache_prompt")
        """Prompt caching asked for: ``"5m"`` (``cache_prompt=True``), ``"1h"`` or None."""
        check_service_tier(service_tier, self.model, f"{owner}service_tier")
        self.service_tier = service_tier
        """The service tier this step's calls ask for (OpenAI), or None."""

    def messages(self, input: Any, vars: Vars) -> list[Message]:
        text = as_text(input) if not isinstance(input, str) else input
        values = {**vars, "input": text}
        msgs = [Message("user", self.prompt.render_vars(values))]
        if self.system is not None:
            msgs.insert(0, Message("system", self.system.render_vars(values)))
        return msgs

    async def invoke(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        # The step's levers hold for every call it makes (a step without any, inside a run
        # without any, changes no context: set_levers gives None).
        levers = set_levers(self.cache_prompt, self.service_tier)
        model = self.model
        # The step span opened and closed here (no scope object: every LLM step is this).
        span, token, t0 = ctx.enter_span("step", self.name, input, model.name,
                                         model.provider_name)
        try:
            if self.memory is not None:
                vars = {**vars, "memory": await recall(ctx, self.memory, as_text(input),
                                                       step=self.name)}
            messages = self.messages(input, vars)
            if self.output is not None:
                SpanHandle(span).note(output_schema=self.output.name)
                out, _ = await call_structured(
                    ctx, model, messages, self.output, step=self.name,
                    temperature=self.temperature, max_tokens=self.max_tokens,
                    stream=self.stream)
            else:
                response = await ctx.call(model, messages, step=self.name,
                                          temperature=self.temperature,
                                          max_tokens=self.max_tokens, stream=self.stream,
                                          fallback=self.fallback)
                out = self.parse(response.text) if self.parse else response.text
        except BaseException as e:
            ctx.exit_span(span, token, t0, exc=e)
            raise
        else:
            ctx.exit_span(span, token, t0, out)
            return out
        finally:
            if levers is not None:
                reset_levers(levers)

    def describe(self) -> dict[str, Any]:
        """This node for graphs and the playground."""
        return {"id": self.name, "kind": "llm", "model": self.model.id,
                "prompt": self.prompt.source,
                "system": self.system.source if self.system is not None else None,
                "temperature": self.temperature, "stream": self.stream,
                "output": self.output.name if self.output is not None else None,
                "memory": self.memory.name if self.memory is not None else None,
                **({"fallback": [m.id for m in self.fallback]} if self.fallback else {}),
                **({"cache_prompt": self.cache_prompt} if self.cache_prompt else {}),
                **({"service_tier": self.service_tier} if self.service_tier else {})}

    def __repr__(self) -> str:
        return f"Step({self.name!r}, {self.model.id!r})"


class FunctionStep(Tracked):
    """A Python function as a step: ``fn(input)``; it may also take ``steps=`` / ``vars=``.

    >>> FunctionStep("upper", str.upper).name
    'upper'
    """

    kind = "python"
    model_attrs: ClassVar[tuple[str, ...]] = ()
    fork_knobs: ClassVar[Mapping[str, int]] = {}

    def __init__(self, name: str, fn: Callable[..., Any]):
        check_name(name, "FunctionStep")
        if not callable(fn):
            raise SpecError(f"step '{name}': {fn!r} is not a function")
        self.name = name
        self.fn = fn
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}  # builtins such as str.upper
        # The first parameter always takes the input, even when it is called e.g. ``outputs``.
        extra = list(params)[1:]
        self._wants = {k for k in ("steps", "vars", "outputs") if k in extra}
        self._async = asyncio.iscoroutinefunction(fn)

    async def invoke(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        with ctx.span("step", self.name, input=input) as span:
            kwargs = {k: (vars if k == "vars" else vars.get(k)) for k in self._wants}
            out = self.fn(input, **kwargs)
            if self._async or inspect.isawaitable(out):
                out = await out
            span.set_output(out)
            return out

    def describe(self) -> dict[str, Any]:
        """This node for graphs and the playground."""
        fn = getattr(self, "origin", self.fn)  # a wrapped reducer names the user's function
        return {"id": self.name, "kind": "python", "function": getattr(fn, "__name__", repr(fn))}

    def __repr__(self) -> str:
        return f"FunctionStep({self.name!r})"


def _check_memory_use(owner: str, memory: Any, *prompts: Prompt | None) -> None:
    uses = any(p is not None and "memory" in p.variables for p in prompts)
    if uses and memory is None:
        raise TemplateError(f"{owner}the template uses {{{{ memory }}}} but there is no memory; "
                            f"pass memory=orchnb.Memory('NAME') (YAML: memory: NAME)",
                            key="prompt")
    if memory is not None and not uses:
        raise TemplateError(f"{owner}memory='{memory.name}' is set but no template uses "
                            f"{{{{ memory }}}}; put {{{{ memory }}}} where the recalled notes "
                            f"belong", key="prompt")


def as_node(obj: Any, name: str | None = None) -> Node:
    """A node from a Step, a pattern, or a plain Python callable."""
    if isinstance(obj, (Step, FunctionStep)) or getattr(obj, "kind", None) == "pattern":
        return obj
    if callable(obj):
        return FunctionStep(name or getattr(obj, "__name__", "function"), obj)
    raise SpecError(f"{obj!r} cannot be a step: use orchnb.Step, a pattern or a Python function")


def check_name(name: Any, what: str) -> None:
    """A step or pattern name: a non-empty string (it names spans, routes and YAML keys)."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{what}(name=...) must be a non-empty string, not {name!r}")


def model_of(node: Any) -> Model | None:
    return getattr(node, "model", None) if isinstance(getattr(node, "model", None), Model) else None
