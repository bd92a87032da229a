"""YAML for agents: ``pattern: agent`` with ``model``, ``system?``, ``prompt?``, ``tools: [names]``
(looked up in the notebook, or ``{mcp: {command, args, env?}}`` / ``{mcp: {url}}`` for the tools
of an MCP server), ``max_iterations``, ``tool_mode``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..exceptions import OrchnbError
from ..tools import Tool, as_tool, mcp_tools
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
    memory: str | None = None


def build_agent(spec: AgentSpec, ctx: SpecContext, key: str, name: str) -> Agent:
    prefix = f"{key}." if key else ""
    model = ctx.model(spec.model, f"{prefix}model")
    tools = [t for i, value in enumerate(spec.tools)
             for t in _tools(ctx, value, f"{prefix}tools[{i}]")]
    return ctx._build(lambda: Agent(
        name, model, tools, system=spec.system, prompt=spec.prompt,
        max_iterations=spec.max_iterations, tool_mode=spec.tool_mode,
        temperature=spec.temperature, max_tokens=spec.max_tokens,
        memory=ctx.memory(spec.memory), **common_options(spec)), key)


_MCP_KEYS = frozenset({"command", "args", "env", "url", "include", "timeout", "connect_timeout"})


def _tools(ctx: SpecContext, value: Any, key: str) -> list[Tool]:
    """One YAML ``tools:`` entry: a name (of a tool, a function or a list of tools) or an
    ``{mcp: {...}}`` server, whose tools are listed now (the server starts)."""
    if isinstance(value, dict):
        server = value.get("mcp")
        if set(value) != {"mcp"} or not isinstance(server, dict):
            raise ctx.error(f"a tool is a name or {{mcp: {{command: ..., args: [...]}}}}, got "
                            f"{value!r:.80}", key)
        unknown = sorted(set(server) - _MCP_KEYS)
        if unknown:
            raise ctx.error(f"unknown mcp key(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(_MCP_KEYS))}", f"{key}.mcp.{unknown[0]}")
        try:
            return list(mcp_tools(**server))
        except TypeError as e:
            raise ctx.error(f"mcp: {e}", f"{key}.mcp") from None
        except OrchnbError as e:
            raise ctx.error(getattr(e, "message", str(e)), f"{key}.mcp") from None
    obj = ctx.callable(value, key)
    if isinstance(obj, (list, tuple)):  # e.g. ``mcp = orchnb.mcp_tools(...)`` in a cell
        return [_tool(ctx, f"{value}[{i}]", item, key) for i, item in enumerate(obj)]
    return [_tool(ctx, value, obj, key)]


def _tool(ctx: SpecContext, value: Any, obj: Any, key: str) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if not callable(obj):
        raise ctx.error(f"'{value}' is not a function (it is {type(obj).__name__} {obj!r:.40}); "
                        f"a tool must be a typed Python function or an orchnb.tool", key)
    try:
        return as_tool(obj)
    except Exception as e:  # e.g. type hints pydantic cannot turn into a schema
        raise ctx.error(f"'{value}' cannot be a tool: {e}", key) from None


register_builder("agent", AgentSpec, build_agent)
