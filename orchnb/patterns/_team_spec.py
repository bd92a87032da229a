"""YAML for teams: ``pattern: team`` with ``supervisor: step`` (its ``prompt`` may be left out),
``agents: {name: agent | pattern | step | function name}`` and ``max_turns``.

A member mapping with ``tools:`` and no ``pattern:`` is an agent (``pattern: agent`` implied).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._plan_execute_spec import with_prompt
from ._spec import Count, PatternSpec, SpecContext, common_options, register_builder
from ._team import SUPERVISOR_PROMPT, Team


class TeamSpec(PatternSpec):
    supervisor: Any
    agents: dict[str, Any]
    max_turns: int = Count(10)


def build_team(spec: TeamSpec, ctx: SpecContext, key: str, name: str) -> Team:
    prefix = f"{key}." if key else ""
    supervisor = ctx.node(with_prompt(spec.supervisor, SUPERVISOR_PROMPT), f"{prefix}supervisor",
                          "supervisor")
    if not spec.agents:
        raise ctx.error(f"team '{name}' has no agents; add at least one under 'agents:'",
                        f"{prefix}agents")
    members = {}
    for member, value in spec.agents.items():
        if isinstance(value, Mapping) and "tools" in value and "pattern" not in value:
            value = {"pattern": "agent", **value}
        members[member] = ctx.node(value, f"{prefix}agents.{member}", member)
    return ctx._build(lambda: Team(name, supervisor, members, max_turns=spec.max_turns,
                                   **common_options(spec)), key)


register_builder("team", TeamSpec, build_team, Team)
