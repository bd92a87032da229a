"""``pipe.to_yaml()``: any pipeline, Python-defined ones too, as the YAML ``from_yaml`` reads.

Python functions (map/reduce steps, tools, classifiers, chunkers) are written as their
``__name__``; ``from_yaml(text, namespace=...)`` (or ``python -m orchnb run --tools``) finds
them by that name. Keys left at their defaults are left out. What YAML cannot say raises
:class:`~orchnb.SpecError` naming it: a lambda, a step's ``parse=``, a retry policy, a node
shared by two routes, a classifier or embedder of your own class.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..models import HashEmbedder, ProviderEmbedder, SentenceTransformerEmbedder
from ._step import FunctionStep, Step

if TYPE_CHECKING:
    from ._base import Pipeline
from ._classify import DEFAULT_PROMPT, EmbeddingClassifier, FunctionClassifier, LLMClassifier

Spec = dict[str, Any]


def to_yaml(pipe: Pipeline, path: str | Path | None = None) -> str:
    """The YAML of ``pipe`` (written to ``path`` too when given)."""
    import yaml  # loaded on first use: `import orchnb` stays fast

    text = yaml.dump(node_spec(pipe), Dumper=_dumper(), sort_keys=False, allow_unicode=True,
                     width=100)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def node_spec(node: Any, default_prompt: str | None = None) -> Any:
    """A node as YAML data: a mapping (a step or a pattern) or a function's name.

    ``default_prompt``: a plain LLM step whose prompt is this pattern default leaves it out.
    A pattern writes its own keys (its ``to_spec()``); this adds its name and options.
    """
    if getattr(node, "kind", None) == "pattern":
        write = getattr(node, "to_spec", None)
        # The writer must know the control flow: a subclass that changes how the pattern
        # runs (its _run) but not how it is written would be written as something it is not.
        if write is None or _owner(type(node), "to_spec") is not _owner(type(node), "_run"):
            raise SpecError(f"pipeline '{node.name}': a {type(node).__name__} cannot be "
                            f"written as YAML; give it a to_spec() method returning its keys")
        return {"pattern": node.pattern, "name": node.name, **write(), **_options(node)}
    if type(node) is Step and default_prompt is not None:
        return step_spec(node, default_prompt)
    if isinstance(node, Step):
        return step_spec(node)
    if isinstance(node, FunctionStep):
        fn = getattr(node, "origin", node.fn)
        name = fn_name(fn, f"step '{node.name}'")
        return name if name == node.name else {"name": node.name, "python": name}
    raise SpecError(f"{node!r} cannot be written as YAML: use orchnb.Step, a pattern or a "
                    f"named Python function")


to_spec = node_spec  # the older name


def _owner(cls: type, attr: str) -> type | None:
    return next((c for c in cls.__mro__ if attr in c.__dict__), None)


def fn_name(fn: Any, where: str) -> str:
    """The name YAML refers to ``fn`` by (a lambda has none: SpecError naming ``where``)."""
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"{where}: {fn!r} has no name YAML can refer to (a lambda?); define it "
                        f"with 'def NAME(...)' and pass NAME")
    return name


def step_spec(step: Step, default_prompt: str | None = None) -> Spec:
    """An LLM step's YAML keys (its prompt left out when it is ``default_prompt``)."""
    where = f"step '{step.name}'"
    if step.parse is not None:
        raise SpecError(f"{where}: parse={fn_name(step.parse, where)} cannot be written as "
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
        out["output"] = fn_name(schema, where)
    memory = getattr(step, "memory", None)
    if memory is not None:
        out["memory"] = getattr(memory, "name", memory)
    out.update(lever_spec(step))
    return out


def lever_spec(node: Any) -> Spec:
    """A step's or agent's cost levers as YAML keys (``cache_prompt``, ``service_tier``)."""
    out: Spec = {}
    ttl = getattr(node, "cache_prompt", None)
    if ttl is not None:
        out["cache_prompt"] = True if ttl == "5m" else ttl
    tier = getattr(node, "service_tier", None)
    if tier is not None:
        out["service_tier"] = tier
    return out


def _options(pipe: Pipeline) -> Spec:
    o = pipe._overrides
    for key in ("persist",):
        if o.get(key) is not None:
            raise SpecError(f"pipeline '{pipe.name}': {key}={o[key]!r} cannot be written as "
                            f"YAML; set it with orchnb.configure({key}=...) or per run instead")
    out: Spec = {}
    budget = o.get("budget")
    if budget is not None:
        caps = {"max_calls": budget.max_calls, "max_tokens": budget.max_tokens,
                "max_usd": None if budget.max_usd is None else float(budget.max_usd)}
        out["budget"] = {k: v for k, v in caps.items() if v is not None}
    for key in ("cache", "timeout", "stream", "service_tier"):
        if o.get(key) is not None:
            out[key] = float(o[key]) if key == "timeout" else o[key]
    retry = o.get("retry")
    if retry is not None:
        from dataclasses import asdict

        from ..engine import RetryPolicy

        default = asdict(RetryPolicy())
        out["retry"] = {k: v for k, v in asdict(retry).items() if default.get(k) != v}
    return out


def without_defaults(spec: Spec, **defaults: Any) -> Spec:
    """``spec`` without the keys whose value is their default."""
    return {k: v for k, v in spec.items() if k not in defaults or v != defaults[k]}


def classifier_spec(clf: Any, router: str) -> Any:
    """A router's classifier as YAML data (``router`` names the router in errors)."""
    named = {"name": clf.name} if clf.name != "classify" else {}
    if isinstance(clf, LLMClassifier):
        spec = step_spec(clf, DEFAULT_PROMPT)
        spec.pop("name")
        spec.pop("stream", None)
        return {**named, **spec}
    if isinstance(clf, FunctionClassifier):
        fn = fn_name(clf.fn, f"router '{router}': classifier")
        return fn if fn == clf.name else {"name": clf.name, "python": fn}
    if isinstance(clf, EmbeddingClassifier):
        emb = clf.embedder
        if not isinstance(emb, (HashEmbedder, ProviderEmbedder, SentenceTransformerEmbedder)) or (
                isinstance(emb, HashEmbedder) and emb.dim != 512):
            raise SpecError(f"router '{router}': the embedder {emb!r} cannot be written "
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
    raise SpecError(f"router '{router}': a {type(clf).__name__} classifier cannot be "
                    f"written as YAML")


@cache
def _dumper() -> Any:
    """A YAML dumper: block scalars (``|``) for multi-line prompts; no anchors for repeats."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper
