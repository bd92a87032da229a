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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine import as_text
from ..models import (
    Message,
    Model,
    ToolSpec,
    Usage,
    call_cost,
    count_tokens,
    price_ref,
    resolve_model,
)
from ._base import FunctionStep, Pipeline, Step, Vars
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
        for kind, visit in _VISITORS.items():
            if isinstance(node, _class(kind)):
                return visit(self, node, input, vars, at)
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
                        max_tokens=step.max_tokens, note=note)
        return Pending(f"output of {step.name}")

    def model_call(self, name: str, kind: str, model: Model, messages: list[Message],
                   at: _Where, *, status: str, deps: list[str], tools: list[ToolSpec] = (),
                   calls: int = 1, max_tokens: int | None = None, note: str = "") -> PreviewCall:
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
        self.calls.append(call)
        return call

    def python(self, name: str, at: _Where, note: str) -> None:
        self.calls.append(PreviewCall(f"{at.path} › {name}", name, "python", None, "python",
                                      when=at.when, certain=at.certain, calls=1, note=note))


def _class(name: str) -> type:
    from importlib import import_module

    module, _, cls = name.rpartition(".")
    return getattr(import_module(f"{__package__}.{module}"), cls)


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


def _within(at: _Where, name: str) -> _Where:
    return _Where(f"{at.path} › {name}" if at.path else name, at.when, at.certain, at.times)


def _at(here: _Where, when: str, certain: bool = True, times: int = 1) -> _Where:
    """``here`` under one more condition."""
    return _Where(here.path, _join(here.when, when), here.certain and certain, here.times * times)


# -- the six patterns -------------------------------------------------------------------------
def _chain(w: _Walker, chain: Any, input: Any, vars: Vars, at: _Where) -> Any:
    outputs = dict(vars.get("steps") or {})
    scope = {**vars, "steps": outputs}
    here = _within(at, chain.name)
    for step in chain.steps:
        input = w.walk(step, input, scope, here)
        outputs[step.name] = input
    return input


def _router(w: _Walker, router: Any, input: Any, vars: Vars, at: _Where) -> Any:
    here = _within(at, router.name)
    labels = list(router.routes)
    clf = router.classifier
    text = input if isinstance(input, str) else as_text(input)
    scope = {**vars, "routes": labels, "labels": labels}
    if isinstance(clf, Step):
        w.step(clf, text, scope, here, kind="classifier")
    elif hasattr(clf, "embedder"):
        embedder = clf.embedder
        model = resolve_model(embedder.id) if getattr(embedder, "remote", False) else None
        note = (f"the first call also embeds the {len(clf._texts)} examples"
                if clf._vectors is None else "")
        if model is not None:
            w.model_call(clf.name, "embed", model, [Message("user", text)], here,
                         status="depends" if _pending(text) else "known", deps=[], note=note)
        else:
            w.calls.append(PreviewCall(f"{here.path} › {clf.name}", clf.name, "embed",
                                       embedder.id, "known", [Message("user", text)],
                                       when=here.when, certain=here.certain,
                                       note=f"local embedder, no paid call; {note}".strip("; ")))
    else:
        w.python(clf.name, here, f"classifier function {_fn_name(getattr(clf, 'fn', clf))}()")
    steps = {**(vars.get("steps") or {}),
             clf.name: Pending(f"route chosen by {clf.name}")}
    by_node: dict[int, list[str]] = {}
    for label, node in router.routes.items():
        by_node.setdefault(id(node), []).append(label)
    for node in router.routes.values():
        names = by_node.pop(id(node), None)
        if names is None:
            continue
        when = "if route " + " or ".join(f"'{n}'" for n in names)
        if router.default in names:
            when += " (the default)"
        w.walk(node, input, {**vars, "steps": steps}, _at(here, when, certain=False))
    return Pending(f"output of {router.name}")


def _mapreduce(w: _Walker, mr: Any, input: Any, vars: Vars, at: _Where) -> Any:
    here = _within(at, mr.name)
    items: list[Any] | None = None
    if not _pending(input):
        try:
            items = mr.items(input)
        except Exception as e:
            w.notes.append(f"{here.path}: cannot split the input yet: {e}")
    if items is None:
        w.walk(mr.map, Pending("an item"), {**vars, "item": 0},
               _at(here, "each item (how many: known at run time)"))
        outputs: list[Any] = [Pending(f"outputs of {mr.map.name}")]
    else:
        w.notes.append(f"{here.path}: the input splits into {len(items)} item"
                       f"{'s' if len(items) != 1 else ''}")
        for i, item in enumerate(items):
            w.walk(mr.map, item, {**vars, "item": i}, _at(here, f"item {i + 1} of {len(items)}"))
        outputs = [Pending(f"output of {mr.map.name} for item {i + 1}") for i in range(len(items))]
    if mr.reduce_tokens:
        w.notes.append(f"{here.path}: long outputs are reduced in groups first "
                       f"(reduce_tokens={mr.reduce_tokens}), which may add reduce calls")
    if mr.reduce is None:
        return outputs
    return w.walk(mr.reduce, outputs, {**vars, "outputs": outputs}, here)


def _agent(w: _Walker, agent: Any, input: Any, vars: Vars, at: _Where) -> Any:
    here = _within(at, agent.name)
    text = input if isinstance(input, str) else as_text(input)
    try:
        messages = agent._opening(text, vars)
        status, note = ("depends" if _marked(messages) else "known"), ""
    except Exception as e:
        messages, status, note = [Message("user", agent.prompt.source)], "error", str(e)
    tools = [t.spec for t in agent.tools.values()] if agent.native else []
    first = w.model_call(agent.name, "agent", agent.model, messages, _at(here, "iteration 1"),
                         status=status, deps=["input"] if status == "depends" else [],
                         tools=tools, max_tokens=agent.max_tokens,
                         note=note or f"tools: {', '.join(agent.tools) or '-'}")
    if agent.max_iterations > 1:
        later = [*messages, Message("assistant", Pending("tool call chosen by the model")),
                 Message("tool", Pending("observation"))]
        w.model_call(agent.name, "agent", agent.model, later, _at(
            here, f"iterations 2–{agent.max_iterations}, until it answers", certain=False),
            status="depends", deps=["earlier iterations"], tools=tools,
            calls=agent.max_iterations - 1, max_tokens=agent.max_tokens,
            note="each iteration re-sends the whole conversation: see the context chart")
    w.agents.append(AgentContext(agent, first.input_tokens or 0, first.token_method,
                                 w.observation_tokens))
    return Pending(f"answer of {agent.name}")


def _plan_execute(w: _Walker, pe: Any, input: Any, vars: Vars, at: _Where) -> Any:
    from ._plans import History

    here = _within(at, pe.name)
    task = input if isinstance(input, str) else as_text(input)
    scope = {**vars, "task": task, "history": History()}
    w.walk(pe.planner, task, scope, _at(here, "plan v1"))
    plan = Pending(f"plan written by {pe.planner.name}")
    scope = {**scope, "plan": plan}
    w.walk(pe.executor, Pending("a plan step"), scope,
           _at(here, f"each plan step (≤ {pe.max_steps})"))
    if pe.replanner is not None:
        done = {**scope, "history": Pending("steps done so far, with results")}
        w.walk(pe.replanner, task, done,
               _at(here, f"after each step (≤ {pe.max_replans} re-plans)"))
    return Pending(f"output of {pe.name}")


def _team(w: _Walker, team: Any, input: Any, vars: Vars, at: _Where) -> Any:
    from ._plans import Workspace
    from ._team import _brief

    here = _within(at, team.name)
    task = input if isinstance(input, str) else as_text(input)
    scope = {**vars, "task": task, "workspace": Workspace(), "agents": list(team.members)}
    w.walk(team.supervisor, task, scope, _at(here, "turn 1"))
    later = {**scope, "workspace": Pending("workspace after the earlier turns")}
    brief = _brief(task, Workspace(), Pending("the supervisor's instruction"))
    for key, member in team.members.items():
        w.walk(member, brief, scope,
               _at(here, f"when the supervisor picks '{key}'", certain=False))
    w.walk(team.supervisor, task, later, _at(
        here, f"turns 2–{team.max_turns + 1}, until FINISH", certain=False,
        times=team.max_turns))
    return Pending(f"output of {team.name}")


def _join(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


_VISITORS: dict[str, Callable[..., Any]] = {
    "_chain.Chain": _chain,
    "_router.Router": _router,
    "_mapreduce.MapReduce": _mapreduce,
    "_agent.Agent": _agent,
    "_plan_execute.PlanExecute": _plan_execute,
    "_team.Team": _team,
}


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
