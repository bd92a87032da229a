"""YAML for agents: ``pattern: agent`` with ``model``, ``system?``, ``prompt?``, ``tools: [names]``
(looked up in the notebook), ``max_iterations``, ``tool_mode``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ..exceptions import SpecError
from ..tools import BUILTIN_TOOLS, Tool, as_tool, builtin_tool
from ._agent import Agent
from ._spec import PatternSpec, SpecContext, common_options, register_builder


class AgentSpec(PatternSpec):
    model: str
    system: str | None = None
    prompt: str = "{{ input }}"
    tools: list[Any] = Field(default_factory=list)
    max_iterations: int = 8
    tool_mode: Literal["native", "text", "auto"] = "auto"
    temperature: float | None = None
    max_tokens: int | None = None
    output: str | dict[str, Any] | None = None
    """A pydantic model named in the notebook, or an inline JSON schema: the final answer's."""


def build_agent(spec: AgentSpec, ctx: SpecContext, key: str, name: str) -> Agent:
    prefix = f"{key}." if key else ""
    model = ctx.model(spec.model, f"{prefix}model")
    tools = [_tool(ctx, value, f"{prefix}tools[{i}]") for i, value in enumerate(spec.tools)]
    output = ctx.output(spec.output, f"{prefix}output")
    return ctx._build(lambda: Agent(
        name, model, tools, system=spec.system, prompt=spec.prompt,
        max_iterations=spec.max_iterations, tool_mode=spec.tool_mode,
        temperature=spec.temperature, max_tokens=spec.max_tokens, output=output,
        **common_options(spec)), key)


def _tool(ctx: SpecContext, value: Any, key: str) -> Tool:
    builtin = _builtin(ctx, value, key)
    if builtin is not None:
        return builtin
    obj = ctx.callable(value, key)
    if isinstance(obj, Tool):
        return obj
    if not callable(obj):
        raise ctx.error(f"'{value}' is not a function (it is {type(obj).__name__} {obj!r:.40}); "
                        f"a tool must be a typed Python function or an orchnb.tool", key)
    try:
        return as_tool(obj)
    except Exception as e:  # e.g. type hints pydantic cannot turn into a schema
        raise ctx.error(f"'{value}' cannot be a tool: {e}", key) from None


def _builtin(ctx: SpecContext, value: Any, key: str) -> Tool | None:
    """A built-in tool named in YAML (when the notebook defines nothing of that name):
    ``calculator``, or ``{doc_search: {paths: [...]}}`` / ``{http_get: {allow: [...]}}``."""
    if isinstance(value, str):
        if value in ctx.namespace or value not in BUILTIN_TOOLS:
            return None
        name, options = value, {}
    elif isinstance(value, Mapping) and len(value) == 1:
        name, options = next(iter(value.items()))
        if name not in BUILTIN_TOOLS:
            raise ctx.error(f"unknown built-in tool '{name}'; built-ins: "
                            f"{', '.join(BUILTIN_TOOLS)} (or name a function)", key)
        if not isinstance(options, Mapping):
            raise ctx.error(f"the options of {name} must be a mapping, e.g. "
                            "{doc_search: {paths: [docs/]}}", f"{key}.{name}")
    else:
        return None
    try:
        return builtin_tool(str(name), dict(options))
    except SpecError as e:
        raise ctx.error(e.message, f"{key}.{name}.{e.key}" if e.key else key) from None
    except TypeError as e:  # an unknown or missing option
        raise ctx.error(f"{name}: {e}", key) from None


register_builder("agent", AgentSpec, build_agent)
