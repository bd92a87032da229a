"""The patterns orchnb ships, one line each, and the check every pattern class must pass.

A pattern is a module pair: ``_NAME.py`` (its control flow and what tooling asks of it) and
``_NAME_spec.py`` (its YAML schema and builder, which calls ``register_builder``). Adding a
pattern touches those two files and one line of :data:`BUILTIN`; preview, ``to_yaml``, fork,
preflight and the playground ask the pattern itself, never a table keyed by its class.
"""

from __future__ import annotations

from typing import Any

BUILTIN: dict[str, tuple[str, str]] = {
    # YAML ``pattern:``   module, class
    "chain": ("_chain", "Chain"),
    "router": ("_router", "Router"),
    "mapreduce": ("_mapreduce", "MapReduce"),
    "agent": ("_agent", "Agent"),
    "plan_execute": ("_plan_execute", "PlanExecute"),
    "team": ("_team", "Team"),
    "quality_router": ("_quality_router", "QualityRouter"),
    "cascade": ("_cascade", "Cascade"),
}

TOOLING: dict[str, str] = {
    "_run": "its control flow: async _run(ctx, input, vars)",
    "children": "its nodes, for the graph and preflight: children() -> list",
    "walk_preview": "its preview: walk_preview(walker, input, vars, at)",
    "to_spec": "its YAML keys: to_spec() -> dict",
    "fork_knobs": "the whole-number knobs run.fork may edit: {name: minimum}",
    "internal_steps": "the names of its bookkeeping spans: frozenset",
    "model_attrs": "the attributes holding its models: tuple of names",
}
"""What every pattern class defines itself, and what for (the base class has none of them)."""


def missing_tooling(cls: type, base: type) -> list[str]:
    """The names of :data:`TOOLING` that ``cls`` leaves to ``base`` (or to nobody)."""
    out = []
    for name in TOOLING:
        owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
        if owner is None or owner is base or owner is object:
            out.append(name)
    return out


def check_pattern(cls: Any, base: type) -> None:
    """Raise ``TypeError`` naming every piece of :data:`TOOLING` that ``cls`` lacks.

    >>> from orchnb.patterns import Chain, Pipeline
    >>> check_pattern(Chain, Pipeline)
    >>> class Half(Pipeline):
    ...     async def _run(self, ctx, input, vars): return input
    >>> check_pattern(Half, Pipeline)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: pattern class Half lacks children (...
    """
    missing = missing_tooling(cls, base)
    if missing:
        raise TypeError(f"pattern class {cls.__name__} lacks "
                        + "; ".join(f"{n} ({TOOLING[n]})" for n in missing)
                        + ": define them on the class (see docs/architecture.md)")
