"""``pipe.to_yaml()``: any pipeline, Python-defined ones too, as the YAML ``from_yaml`` reads.

Python functions (map/reduce steps, tools, classifiers, chunkers) are written as their
``__name__``; ``from_yaml(text, namespace=...)`` (or ``python -m orchnb run --tools``) finds
them by that name. Keys left at their defaults are left out. What YAML cannot say raises
:class:`~orchnb.SpecError` naming it: a lambda, a step's ``parse=``, a retry policy, a node
shared by two routes, a classifier or embedder of your own class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..exceptions import SpecError
from ._base import FunctionStep, Pipeline, Step

Spec = dict[str, Any]


def to_yaml(pipe: Pipeline, path: str | Path | None = None) -> str:
    """The YAML of ``pipe`` (written to ``path`` too when given)."""
    text = yaml.dump(to_spec(pipe), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=100)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def to_spec(node: Any) -> Any:
    """A node as YAML data: a mapping (a step or a pattern) or a function's name."""
    if isinstance(node, Pipeline):
        for cls_name, write in _WRITERS.items():
            if type(node) is _class(cls_name):  # a subclass may add what YAML cannot say
                return {"pattern": node.pattern, "name": node.name, **write(node),
                        **_options(node)}
        custom = getattr(node, "to_spec", None)
        if callable(custom):  # a pattern of your own registered with register_builder
            return {"pattern": node.pattern, "name": node.name, **custom(), **_options(node)}
        raise SpecError(f"pipeline '{node.name}': a {type(node).__name__} cannot be written as "
                        f"YAML; give it a to_spec() method returning its keys")
    if isinstance(node, Step):
        return _step(node)
    if isinstance(node, FunctionStep):
        fn = getattr(node, "origin", node.fn)
        name = _fn_name(fn, f"step '{node.name}'")
        return name if name == node.name else {"name": node.name, "python": name}
    raise SpecError(f"{node!r} cannot be written as YAML: use orchnb.Step, a pattern or a "
                    f"named Python function")


def _class(name: str) -> type:
    from importlib import import_module

    module, _, cls = name.rpartition(".")
    return getattr(import_module(f"{__package__}.{module}"), cls)


def _fn_name(fn: Any, where: str) -> str:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"{where}: {fn!r} has no name YAML can refer to (a lambda?); define it "
                        f"with 'def NAME(...)' and pass NAME")
    return name


def _step(step: Step, default_prompt: str | None = None) -> Spec:
    where = f"step '{step.name}'"
    if step.parse is not None:
        raise SpecError(f"{where}: parse={_fn_name(step.parse, where)} cannot be written as "
                        f"YAML; parse in a Python step after it instead")
    out: Spec = {"name": step.name, "model": step.model.id}
    if step.prompt.source != default_prompt:
        out["prompt"] = step.prompt.source
    if step.system is not None:
        out["system"] = step.system.source
    if step.temperature is not None:
        out["temperature"] = float(step.temperature)  # as YAML reads it back
    if step.max_tokens is not None:
        out["max_tokens"] = step.max_tokens
    if step.stream:
        out["stream"] = True
    schema = getattr(step, "output", None)  # structured output: the model class, by name
    if schema is not None:
        out["output"] = _fn_name(schema, where)
    memory = getattr(step, "memory", None)
    if memory is not None:
        out["memory"] = getattr(memory, "name", memory)
    return out


def _options(pipe: Pipeline) -> Spec:
    o = pipe._overrides
    for key in ("retry", "persist"):
        if o.get(key) is not None:
            raise SpecError(f"pipeline '{pipe.name}': {key}={o[key]!r} cannot be written as "
                            f"YAML; set it with orchnb.configure({key}=...) or per run instead")
    out: Spec = {}
    budget = o.get("budget")
    if budget is not None:
        caps = {"max_calls": budget.max_calls, "max_tokens": budget.max_tokens,
                "max_usd": None if budget.max_usd is None else float(budget.max_usd)}
        out["budget"] = {k: v for k, v in caps.items() if v is not None}
    for key in ("cache", "timeout", "stream"):
        if o.get(key) is not None:
            out[key] = float(o[key]) if key == "timeout" else o[key]
    return out


def _defaults(spec: Spec, **defaults: Any) -> Spec:
    """``spec`` without the keys whose value is their default."""
    return {k: v for k, v in spec.items() if k not in defaults or v != defaults[k]}


# -- the six patterns -------------------------------------------------------------------------
def _chain(chain: Any) -> Spec:
    return {"steps": [to_spec(s) for s in chain.steps]}


def _router(router: Any) -> Spec:
    seen: dict[int, str] = {}
    routes = {}
    for label, node in router.routes.items():
        if id(node) in seen:
            raise SpecError(f"router '{router.name}': routes '{seen[id(node)]}' and '{label}' "
                            f"share one node, which YAML cannot express; give each route its "
                            f"own step", key=f"routes.{label}")
        seen[id(node)] = label
        routes[label] = to_spec(node)
    out: Spec = {"classifier": _classifier(router)}
    aliases = getattr(router.classifier, "aliases", None)
    if aliases:
        out["aliases"] = dict(aliases)
    out["routes"] = routes
    if router.default is not None:
        out["default"] = router.default
    return out


def _classifier(router: Any) -> Any:
    from ._classify import DEFAULT_PROMPT, EmbeddingClassifier, FunctionClassifier, LLMClassifier
    from ._embed import HashEmbedder, ProviderEmbedder, SentenceTransformerEmbedder

    clf = router.classifier
    named = {"name": clf.name} if clf.name != "classify" else {}
    if isinstance(clf, LLMClassifier):
        spec = _step(clf, DEFAULT_PROMPT)
        spec.pop("name")
        spec.pop("stream", None)
        return {**named, **spec}
    if isinstance(clf, FunctionClassifier):
        fn = _fn_name(clf.fn, f"router '{router.name}': classifier")
        return fn if fn == clf.name else {"name": clf.name, "python": fn}
    if isinstance(clf, EmbeddingClassifier):
        emb = clf.embedder
        if not isinstance(emb, (HashEmbedder, ProviderEmbedder, SentenceTransformerEmbedder)) or (
                isinstance(emb, HashEmbedder) and emb.dim != 512):
            raise SpecError(f"router '{router.name}': the embedder {emb!r} cannot be written "
                            f"as YAML; use 'sim', 'st:NAME' or 'openai:MODEL'")
        out = {**named, "embed": emb.id, "examples": {k: list(v) for k, v in
                                                      clf.examples.items()}}
        if clf.threshold is not None:
            out["threshold"] = float(clf.threshold)
        if clf.asked != "auto":
            out["method"] = clf.asked
        if clf.k != 5:
            out["k"] = clf.k
        if clf.C != 10.0:
            out["C"] = clf.C
        return out
    raise SpecError(f"router '{router.name}': a {type(clf).__name__} classifier cannot be "
                    f"written as YAML")


def _mapreduce(mr: Any) -> Spec:
    out: Spec = {"map": to_spec(mr.map)}
    if mr.reduce is not None:
        out["reduce"] = to_spec(mr.reduce)
    out.update(_defaults(
        {"concurrency": mr.concurrency, "chunk_tokens": mr.chunk_tokens,
         "overlap_tokens": mr.overlap_tokens, "reduce_tokens": mr.reduce_tokens,
         "on_error": mr.on_error, "retries": mr.retries},
        concurrency=8, chunk_tokens=3000, overlap_tokens=200, reduce_tokens=None,
        on_error="fail", retries=2))
    if mr.chunker is not None:
        out["chunker"] = _fn_name(mr.chunker, f"mapreduce '{mr.name}': chunker")
    return out


def _agent(agent: Any) -> Spec:
    out: Spec = {"model": agent.model.id}
    if agent.system is not None:
        out["system"] = agent.system.source
    tools: list[Any] = []
    servers: dict[int, Spec] = {}
    for t in agent.tools.values():
        mcp = getattr(t, "yaml_spec", None)  # an MCP server's tool: one entry per server
        if mcp is not None:
            entry = servers.get(id(t.server))
            if entry is None:
                entry = servers[id(t.server)] = {"mcp": {**mcp["mcp"], "include": []}}
                tools.append(entry)
            entry["mcp"]["include"].append(t.name)
            continue
        tools.append(_fn_name(getattr(t, "fn", None), f"agent '{agent.name}': tool '{t.name}'"))
    out.update(_defaults(
        {"prompt": agent.prompt.source, "tools": tools, "max_iterations": agent.max_iterations,
         "max_tool_calls": agent.max_tool_calls, "tool_mode": agent.tool_mode,
         "temperature": None if agent.temperature is None else float(agent.temperature),
         "max_tokens": agent.max_tokens},
        prompt="{{ input }}", tools=[], max_iterations=8, max_tool_calls=32, tool_mode="auto",
        temperature=None, max_tokens=None))
    memory = getattr(agent, "memory", None)
    if memory is not None:
        out["memory"] = memory.name
    return out


def _plan_execute(pe: Any) -> Spec:
    from ._plan_execute import PLANNER_PROMPT, REPLANNER_PROMPT

    out: Spec = {"planner": _node(pe.planner, PLANNER_PROMPT),
                 "executor": to_spec(pe.executor)}
    r = pe.replanner
    # The replanner PlanExecute derives from an LLM planner when max_replans is set: implied.
    derived = (pe.max_replans and type(pe.planner) is Step and type(r) is Step
               and r.name == "replanner" and r.prompt.source == REPLANNER_PROMPT
               and r.model.id == pe.planner.model.id
               and _source(r.system) == _source(pe.planner.system)
               and r.temperature is None and r.max_tokens is None and not r.stream
               and r.parse is None)
    if r is not None and not derived:
        out["replanner"] = _node(pe.replanner, REPLANNER_PROMPT)
    out.update(_defaults({"max_replans": pe.max_replans, "max_steps": pe.max_steps},
                         max_replans=0, max_steps=20))
    return out


def _team(team: Any) -> Spec:
    from ._team import SUPERVISOR_PROMPT

    out: Spec = {"supervisor": _node(team.supervisor, SUPERVISOR_PROMPT),
                 "agents": {key: to_spec(node) for key, node in team.members.items()}}
    out.update(_defaults({"max_turns": team.max_turns}, max_turns=10))
    return out


def _node(node: Any, default_prompt: str) -> Any:
    """A node whose LLM-step form may leave out the pattern's default prompt."""
    return _step(node, default_prompt) if type(node) is Step else to_spec(node)


def _source(prompt: Any) -> str | None:
    return None if prompt is None else prompt.source


_WRITERS: dict[str, Callable[[Any], Spec]] = {
    "_chain.Chain": _chain,
    "_router.Router": _router,
    "_mapreduce.MapReduce": _mapreduce,
    "_agent.Agent": _agent,
    "_plan_execute.PlanExecute": _plan_execute,
    "_team.Team": _team,
}


class _Dumper(yaml.SafeDumper):
    """Block scalars (``|``) for multi-line prompts; no anchors for repeated values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
