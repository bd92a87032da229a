"""YAML for chains: ``pattern: chain`` with ``steps: [{name, model, prompt, system?}, ...]``."""

from __future__ import annotations

from typing import Any

from ._chain import Chain
from ._spec import PatternSpec, SpecContext, common_options, register_builder


class ChainSpec(PatternSpec):
    steps: list[Any]


def build_chain(spec: ChainSpec, ctx: SpecContext, key: str, name: str) -> Chain:
    prefix = f"{key}.steps" if key else "steps"
    steps = []
    for i, value in enumerate(spec.steps):
        default_name = (value.get("name") if isinstance(value, dict) else None) or f"step{i + 1}"
        steps.append(ctx.node(value, f"{prefix}[{i}]", str(default_name)))
    return ctx._build(lambda: Chain(name, steps, **common_options(spec)), key)


register_builder("chain", ChainSpec, build_chain, Chain)
