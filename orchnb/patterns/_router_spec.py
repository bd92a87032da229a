"""YAML for routers::

    pattern: router
    classifier: {model, prompt?, system?}      # an LLM classifier
              | {embed, examples, threshold?,  # an embedding classifier
                 method?, k?, C?}              #   (method: auto|nearest|centroid|knn|linear|hybrid)
              | {python: fn_name}              # a function text -> label
    aliases: {refund: billing}                 # optional extra words for labels
    routes: {label: step | pattern, ...}
    default: label
"""

from __future__ import annotations

from typing import Any

from ..engine import MAX_TOKENS_KNOB
from ._classify import EmbeddingClassifier, FunctionClassifier, LLMClassifier
from ._router import Router
from ._spec import (
    MODEL_LIKE,
    Count,
    PatternSpec,
    SpecContext,
    SpecModel,
    common_options,
    register_builder,
)


class ClassifierSpec(SpecModel):
    name: str | None = None
    model: str | None = None
    prompt: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = Count(None, ge=1, le=MAX_TOKENS_KNOB)
    embed: str | None = None
    examples: dict[str, list[str]] | None = None
    threshold: float | None = None
    method: str | None = None
    k: int | None = None
    C: float | None = None
    python: str | None = None


class RouterSpec(PatternSpec):
    classifier: Any
    routes: dict[str, Any]
    default: str | None = None
    aliases: dict[str, str] | None = None


def build_router(spec: RouterSpec, ctx: SpecContext, key: str, name: str) -> Router:
    at = (lambda k: f"{key}.{k}" if key else k)  # noqa: E731
    classifier = _classifier(spec.classifier, ctx, at("classifier"))
    routes = {label: ctx.node(value, at(f"routes.{label}"), label)
              for label, value in spec.routes.items()}
    return ctx._build(lambda: Router(name, classifier, routes, default=spec.default,
                                     aliases=spec.aliases, **common_options(spec)), key)


def _classifier(value: Any, ctx: SpecContext, key: str) -> Any:
    if isinstance(value, str) and MODEL_LIKE.match(value):  # as in the Python API
        model = ctx.model(value, key)
        return ctx._build(lambda: LLMClassifier(model, None, name="classify"), key)
    if isinstance(value, str):
        return FunctionClassifier(ctx.callable(value, key), value)
    c = ctx.validate(ClassifierSpec, value, key)
    kinds = [k for k, on in (("model", c.model), ("embed", c.embed or c.examples),
                             ("python", c.python)) if on]
    if len(kinds) != 1:
        raise ctx.error("give the classifier either 'model' (+ 'prompt'), 'embed' + 'examples', "
                        "or 'python'" + (f", not {' and '.join(kinds)}" if kinds else ""), key)
    name = c.name or "classify"
    if c.python:
        return FunctionClassifier(ctx.callable(c.python, f"{key}.python"), name)
    if c.model:
        extra = [k for k in ("examples", "threshold", "method", "k", "C")
                 if getattr(c, k) is not None]
        if extra:
            raise ctx.error(f"'{extra[0]}' is for embedding classifiers; an LLM classifier "
                            f"takes model, prompt and system", f"{key}.{extra[0]}")
        model = ctx.model(c.model, f"{key}.model")
        return ctx._build(lambda: LLMClassifier(
            model, c.prompt, name=name, system=c.system, temperature=c.temperature,
            max_tokens=c.max_tokens), key)
    if not c.examples:
        raise ctx.error("an embedding classifier needs 'examples': {route: [utterances]}",
                        f"{key}.examples")
    tuning = {k: v for k, v in (("method", c.method), ("k", c.k), ("C", c.C)) if v is not None}
    return ctx._build(lambda: EmbeddingClassifier(
        c.examples, c.embed or "sim", threshold=c.threshold, name=name, **tuning), key)


register_builder("router", RouterSpec, build_router, Router)
