"""YAML for agents: ``pattern: agent`` with ``model``, ``system?``, ``prompt?``, ``tools: [names]``
(looked up in the notebook; built-ins; ``{mcp: {command, args, env?}}`` / ``{mcp: {url}}`` for
the tools of an MCP server), ``max_iterations``, ``max_tool_calls`` (tool calls run per model
reply), ``tool_mode``, ``output?``, ``memory?``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ..engine import MAX_TOKENS_KNOB
from ..exceptions import OrchnbError, SpecError
from ..tools import BUILTIN_TOOLS, Tool, as_tool, builtin_tool, mcp_tools
from ._agent import Agent
from ._spec import Count, PatternSpec, SpecContext, common_options, register_builder


class AgentSpec(PatternSpec):
    model: str
    system: str | None = None
    prompt: str = "{{ input }}"
    tools: list[Any] = Field(default_factory=list)
    max_iterations: int = Count(8)
    max_tool_calls: int = Count(32)
    """Tool calls run per model reply; the rest are answered with an error observation."""
    tool_mode: Literal["native", "text", "auto"] = "auto"
    temperature: float | None = None
    max_tokens: int | None = Count(None, ge=1, le=MAX_TOKENS_KNOB)
    output: str | dict[str, Any] | None = None
    """A pydantic model named in the notebook, or an inline JSON schema: the final answer's."""
    memory: str | None = None
    """A Memory recalled into ``{{ memory }}`` (the notebook's of that name, else the store)."""
    cache_prompt: bool | Literal["5m", "1h"] = False
    """Prompt caching of the system prompt, tools and conversation: ``true`` or ``"1h"``."""


def build_agent(spec: AgentSpec, ctx: SpecContext, key: str, name: str) -> Agent:
    prefix = f"{key}." if key else ""
    model = ctx.model(spec.model, f"{prefix}model")
    tools = [t for i, value in enumerate(spec.tools)
             for t in _tools(ctx, value, f"{prefix}tools[{i}]")]
    output = ctx.output(spec.output, f"{prefix}output")
    return ctx._build(lambda: Agent(
        name, model, tools, system=spec.system, prompt=spec.prompt,
        max_iterations=spec.max_iterations, max_tool_calls=spec.max_tool_calls,
        tool_mode=spec.tool_mode,
        temperature=spec.temperature, max_tokens=spec.max_tokens, output=output,
        memory=ctx.memory(spec.memory), cache_prompt=spec.cache_prompt,
        **common_options(spec)), key)


_MCP_KEYS = frozenset({"command", "args", "env", "url", "include", "timeout", "connect_timeout"})


def _tools(ctx: SpecContext, value: Any, key: str) -> list[Tool]:
    """One YAML ``tools:`` entry: a built-in, an ``{mcp: {...}}`` server (whose tools are
    listed now: the server starts), or a name (of a tool, a function or a list of tools)."""
    if isinstance(value, Mapping) and "mcp" in value:
        return _mcp(ctx, value, key)
    builtin = _builtin(ctx, value, key)
    if builtin is not None:
        return [builtin]
    obj = ctx.callable(value, key)
    if isinstance(obj, (list, tuple)):  # e.g. ``mcp = orchnb.mcp_tools(...)`` in a cell
        return [_tool(ctx, f"{value}[{i}]", item, key) for i, item in enumerate(obj)]
    return [_tool(ctx, value, obj, key)]


def _mcp(ctx: SpecContext, value: Mapping[str, Any], key: str) -> list[Tool]:
    server = value["mcp"]
    if len(value) != 1 or not isinstance(server, Mapping):
        raise ctx.error(f"an MCP server is {{mcp: {{command: ..., args: [...]}}}} or "
                        f"{{mcp: {{url: ...}}}}, got {dict(value)!r:.80}", key)
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


register_builder("agent", AgentSpec, build_agent, Agent)
