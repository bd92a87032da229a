"""``pipe.preview(x)``: the messages every model call of a run would send, before any is sent.

The pattern is walked as its run would walk it, but nothing is called: no model, no embedding,
no tool and no Python step (their outputs are unknown). What a call's prompt takes from an
earlier output is shown as a placeholder ``⟪output of summarize⟫`` and the call is marked
``depends``; its token count is then a lower bound (the placeholders are not counted). The one
piece of user code that runs is a map-reduce ``chunker`` (it decides how many map calls there
are). Template errors are shown, not raised: a preview never fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import (
    Message,
    Model,
    ToolSpec,
    Usage,
    call_cost,
    count_tokens,
    price_ref,
)
from ._preview_cache import cache_view
from ._step import FunctionStep, Step, Vars

if TYPE_CHECKING:
    from ._base import Pipeline
from ._preview_view import AgentContext, Preview

OPEN, CLOSE = "⟪", "⟫"
_MARK = re.compile(f"{OPEN}[^{CLOSE}]*{CLOSE}")


class Pending(str):
    """A value known only once the run gets there; renders as ``⟪what⟫`` in prompts."""

    def __new__(cls, what: str) -> Pending:
        return super().__new__(cls, f"{OPEN}{what}{CLOSE}")

    def __getattr__(self, name: str) -> Pending:
        # ``{{ steps.extract.amount }}`` on a structured output not known yet: still pending.
        if name.startswith("_"):
            raise AttributeError(name)
        return Pending(f"{self[len(OPEN):len(self) - len(CLOSE)]}.{name}")


@dataclass
class PreviewCall:
    """One model (or embedding) call a run would make, or a Python step it would run."""

    path: str
    """Where it sits: ``pipeline › route › step``."""
    step: str
    kind: str
    """``llm``, ``classifier``, ``agent``, ``embed`` or ``python`` (not previewed: it is code)."""
    model: str | None
    status: str
    """``known`` (the messages are final), ``depends`` (they take earlier outputs, shown as
    ``⟪…⟫``), ``python`` or ``error`` (the template cannot render; see ``note``)."""
    messages: list[Message] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    when: str = ""
    """When the call happens: empty for always, else e.g. ``if route 'billing'``."""
    certain: bool = True
    """Whether every run that succeeds makes this call (routes and later iterations do not)."""
    calls: int = 1
    input_tokens: int | None = None
    """Input tokens of one call; a lower bound when ``status == 'depends'``."""
    token_method: str = ""
    cost_usd: float | None = None
    """Input cost of all ``calls`` (NaN: the price is unknown; output tokens are not known)."""
    priced_as: str | None = None
    """The model whose price applies (``price_ref``): None for a free sim model."""
    max_output_tokens: int | None = None
    note: str = ""
    cacheable: str = ""
    """The prompt's cacheable prefix (``system + 2 tools``), empty when it has none."""
    cacheable_tokens: int | None = None
    """Its size in tokens; the provider caches it from ``cache_min_tokens`` on."""
    cache_min_tokens: int | None = None


@dataclass
class _Where:
    path: str
    when: str = ""
    certain: bool = True
    times: int = 1
    """How many calls each call site below stands for (e.g. a supervisor's later turns)."""


class _Walker:
    """Walks a pipeline like its run would, recording calls instead of making them."""

    def __init__(self, observation_tokens: int):
        self.calls: list[PreviewCall] = []
        self.agents: list[AgentContext] = []
        self.notes: list[str] = []
        self.observation_tokens = observation_tokens

    def walk(self, node: Any, input: Any, vars: Vars, at: _Where) -> Any:
        walk = getattr(node, "walk_preview", None)  # each pattern walks itself, as it runs
        if walk is not None:
            return walk(self, input, vars, at)
        if isinstance(node, Step):
            return self.step(node, input, vars, at)
        if isinstance(node, FunctionStep):
            self.python(node.name, at, f"Python step {_fn_name(node.fn)}()")
            return Pending(f"output of {node.name}")
        self.notes.append(f"{at.path}: a {type(node).__name__} cannot be previewed")
        return Pending(f"output of {getattr(node, 'name', 'node')}")

    # -- leaves -----------------------------------------------------------------------------
    def step(self, step: Step, input: Any, vars: Vars, at: _Where, kind: str = "llm") -> Pending:
        values = {**vars, "input": input}
        memory = getattr(step, "memory", None)
        if memory is not None:  # filled by a memory search when the step runs
            values["memory"] = Pending(f"memories from '{getattr(memory, 'name', memory)}'")
        deps = _depends(step, values)
        try:
            messages = step.messages(input, {k: v for k, v in values.items() if k != "input"})
            status, note = ("depends" if deps or _marked(messages) else "known"), ""
        except Exception as e:  # a template that cannot render before the run
            messages = [Message("user", step.prompt.source)]
            status, note = "error", f"cannot render yet: {e}"
        if status == "depends" and not deps:
            deps = ["input"]
        if getattr(step, "output", None) is not None:
            note = (note + "; " if note else "") + "structured output: the schema is not counted"
        self.model_call(step.name, kind, step.model, messages, at, status=status, deps=deps,
                        max_tokens=step.max_tokens, note=note,
                        cache_prompt=getattr(step, "cache_prompt", None))
        return Pending(f"output of {step.name}")

    def model_call(self, name: str, kind: str, model: Model, messages: list[Message],
                   at: _Where, *, status: str, deps: list[str], tools: list[ToolSpec] = (),
                   calls: int = 1, max_tokens: int | None = None, note: str = "",
                   cache_prompt: str | None = None) -> PreviewCall:
        bare = [Message(m.role, _MARK.sub("", m.content), m.tool_calls, m.tool_call_id, m.name)
                for m in messages]
        count = count_tokens(model, bare, tools)
        if count.note and count.note not in self.notes:
            self.notes.append(count.note)
        cost, priced = call_cost(model, Usage(count.tokens, 0))
        call = PreviewCall(
            path=f"{at.path} › {name}" if at.path and not at.path.endswith(name) else
            (at.path or name), step=name, kind=kind, model=model.id, status=status,
            messages=messages, depends_on=deps, when=at.when, certain=at.certain,
            calls=calls * at.times,
            input_tokens=count.tokens, token_method=count.method,
            cost_usd=cost * calls * at.times if priced else float("nan"),
            max_output_tokens=max_tokens, note=note, priced_as=price_ref(model))
        view = cache_view(model, bare, tools, cache_prompt) if kind != "embed" else None
        if view is not None:
            call.cacheable, call.cacheable_tokens = view.part, view.tokens
            call.cache_min_tokens = view.minimum
            call.note = f"{call.note}; {view.note}" if call.note else view.note
        self.calls.append(call)
        return call

    def python(self, name: str, at: _Where, note: str) -> None:
        self.calls.append(PreviewCall(f"{at.path} › {name}", name, "python", None, "python",
                                      when=at.when, certain=at.certain, calls=1, note=note))

    def local(self, name: str, kind: str, model_id: str, messages: list[Message], at: _Where,
              note: str) -> None:
        """A call that costs nothing (a local embedder): listed, not priced."""
        self.calls.append(PreviewCall(f"{at.path} › {name}", name, kind, model_id, "known",
                                      messages, when=at.when, certain=at.certain, note=note))

    def agent_context(self, agent: Any, first: PreviewCall) -> None:
        """How an agent's context grows from its ``first`` call (the context chart)."""
        self.agents.append(AgentContext(agent, first.input_tokens or 0, first.token_method,
                                        self.observation_tokens))

    # -- what patterns use to describe where a call happens ----------------------------------
    @staticmethod
    def within(at: _Where, name: str) -> _Where:
        """Inside the pattern ``name``."""
        return _Where(f"{at.path} › {name}" if at.path else name, at.when, at.certain, at.times)

    @staticmethod
    def under(here: _Where, when: str, certain: bool = True, times: int = 1) -> _Where:
        """``here`` under one more condition (``certain=False``: not every run gets there)."""
        return _Where(here.path, _join(here.when, when), here.certain and certain,
                      here.times * times)

    @staticmethod
    def pending(what: str) -> Pending:
        """A value known only at run time, shown as ``⟪what⟫``."""
        return Pending(what)

    @staticmethod
    def is_pending(value: Any) -> bool:
        return _pending(value)

    @staticmethod
    def marked(messages: list[Message]) -> bool:
        """Whether ``messages`` hold a value known only at run time."""
        return _marked(messages)

    @staticmethod
    def fn_name(fn: Any) -> str:
        return _fn_name(fn)


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _pending(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return OPEN in value
    if depth > 2:
        return False
    if isinstance(value, Mapping):
        return any(_pending(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_pending(v, depth + 1) for v in value)
    return value is not None and OPEN in str(value)


def _depends(step: Step, values: Vars) -> list[str]:
    """The template variables of ``step`` whose values are not known yet."""
    used = set(step.prompt.variables)
    refs = set(step.prompt.step_refs)
    if step.system is not None:
        used |= step.system.variables
        refs |= step.system.step_refs
    out = []
    for name in sorted(used):
        if name == "steps" and refs:
            steps = values.get("steps") or {}
            out += [f"steps.{r}" for r in sorted(refs) if _pending(steps.get(r))]
        elif _pending(values.get(name)):
            out.append(name)
    return out


def _marked(messages: list[Message]) -> bool:
    return any(OPEN in m.content for m in messages)


def _join(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def preview(pipe: Pipeline, input: Any, *, observation_tokens: int = 50) -> Preview:
    """What ``pipe(input)`` would send, without sending anything (see :meth:`Pipeline.preview`)."""
    walker = _Walker(observation_tokens)
    walker.walk(pipe, input, {"run_input": input}, _Where(""))
    for model in pipe.models():
        try:
            model.check()
        except Exception as e:  # shown, not raised: the run itself would raise it
            walker.notes.append(f"a run would fail before its first call: {e}")
    return Preview(pipe, input, walker.calls, walker.agents, walker.notes)
