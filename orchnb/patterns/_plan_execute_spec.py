"""YAML for plan-and-execute: ``pattern: plan_execute`` with ``planner: step`` (its ``prompt``
may be left out), ``executor: step | pattern``, ``replanner?: step``, ``max_replans``,
``max_steps``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._plan_execute import PLANNER_PROMPT, REPLANNER_PROMPT, PlanExecute
from ._spec import MODEL_LIKE, Count, PatternSpec, SpecContext, common_options, register_builder


class PlanExecuteSpec(PatternSpec):
    planner: Any
    executor: Any
    replanner: Any = None
    max_replans: int = Count(0, ge=0)
    max_steps: int = Count(20)


def with_prompt(value: Any, prompt: str) -> Any:
    """An LLM step mapping given without ``prompt`` gets the pattern's default prompt; so does
    a bare model string (``planner: openai:gpt-4o``), as in the Python API."""
    if isinstance(value, str) and MODEL_LIKE.match(value):
        return {"model": value, "prompt": prompt}
    if isinstance(value, Mapping) and "model" in value and "pattern" not in value:
        return {"prompt": prompt, **value}
    return value


def build_plan_execute(spec: PlanExecuteSpec, ctx: SpecContext, key: str,
                       name: str) -> PlanExecute:
    prefix = f"{key}." if key else ""
    planner = ctx.node(with_prompt(spec.planner, PLANNER_PROMPT), f"{prefix}planner", "planner")
    executor = ctx.node(spec.executor, f"{prefix}executor", "executor")
    replanner = None if spec.replanner is None else ctx.node(
        with_prompt(spec.replanner, REPLANNER_PROMPT), f"{prefix}replanner", "replanner")
    return ctx._build(lambda: PlanExecute(
        name, planner, executor, replanner=replanner, max_replans=spec.max_replans,
        max_steps=spec.max_steps, **common_options(spec)), key)


register_builder("plan_execute", PlanExecuteSpec, build_plan_execute, PlanExecute)
