"""YAML for quality routers (the examples are a CSV path; a DataFrame cannot be YAML)::

    pattern: quality_router
    weak: step | pattern                  # e.g. {model: openai:gpt-4o-mini, prompt: "{{ input }}"}
    strong: step | pattern
    examples: graded.csv                  # text, weak score, strong score per row
    text: text                            # column names (these are the defaults)
    weak_score: weak_score
    strong_score: strong_score
    embed: sim                            # or st:all-MiniLM-L6-v2, openai:text-embedding-3-small
    method: auto                          # auto | knn | linear
    groups: subject                       # optional: cross-validate by whole groups
    length: false                         # true: try a prompt-length term too
    strong_share: 0.3                     # or quality:, budget_per_1k: (+ weak_cost, strong_cost),
                                          # or threshold:

A ladder of models by price (cheapest first) instead of weak/strong::

    pattern: quality_router
    ladder: [step, step, step]            # cheapest first
    scores: [cheap_score, mid_score, dear_score]   # one graded column per model
    costs: [0.0002, 0.001, 0.01]          # optional: dollars per query (needed by budget_per_1k)
    examples: graded.csv
    quality: 0.8                          # or strong_share: (share above the cheapest),
                                          # budget_per_1k:, or threshold:
"""

from __future__ import annotations

from typing import Any

from ._quality_router import QualityRouter
from ._spec import PatternSpec, SpecContext, common_options, register_builder


class QualityRouterSpec(PatternSpec):
    weak: Any = None
    strong: Any = None
    ladder: list[Any] | None = None
    scores: list[str] | None = None
    costs: list[float] | None = None
    examples: str
    text: str = "text"
    weak_score: str = "weak_score"
    strong_score: str = "strong_score"
    embed: str = "sim"
    method: str = "auto"
    strong_share: float | None = None
    quality: float | None = None
    budget_per_1k: float | None = None
    weak_cost: float | None = None
    strong_cost: float | None = None
    threshold: float | None = None
    seed: int = 0
    groups: str | None = None
    length: bool = False


def build_quality_router(spec: QualityRouterSpec, ctx: SpecContext, key: str,
                         name: str) -> QualityRouter:
    at = (lambda k: f"{key}.{k}" if key else k)  # noqa: E731
    weak = None if spec.weak is None else ctx.node(spec.weak, at("weak"), "weak")
    strong = None if spec.strong is None else ctx.node(spec.strong, at("strong"), "strong")
    knobs = {k: getattr(spec, k) for k in (
        "text", "weak_score", "strong_score", "embed", "method", "strong_share", "quality",
        "budget_per_1k", "weak_cost", "strong_cost", "threshold", "seed", "groups", "length",
        "scores", "costs")}
    if spec.ladder is not None:
        knobs["ladder"] = [ctx.node(n, at(f"ladder.{i}"), f"model{i}")
                           for i, n in enumerate(spec.ladder)]
    return ctx._build(lambda: QualityRouter(name, weak, strong, spec.examples, **knobs,
                                            **common_options(spec)), key)


register_builder("quality_router", QualityRouterSpec, build_quality_router, QualityRouter)
