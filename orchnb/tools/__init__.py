"""Tools for agents, built from typed Python functions, built-ins that need no key, and
the tools of MCP servers (:func:`mcp_tools`).

>>> from orchnb.tools import calculator, doc_search, http_get
>>> calculator.name
'calculator'
"""

from __future__ import annotations

from typing import Any

from ._doc_search import DocIndex, doc_search
from ._http_get import http_get
from ._mcp import MCPTool, close_mcp_servers, mcp_tools
from ._threads import background_loop
from ._tool import Tool, as_tool, tool

BUILTIN_TOOLS = ("calculator", "doc_search", "http_get")
"""Tools YAML can name without defining them: ``tools: [calculator, {doc_search: {paths:
[docs/]}}, {http_get: {allow: [example.com]}}]``."""

__all__ = ["BUILTIN_TOOLS", "DocIndex", "MCPTool", "Tool", "as_tool", "background_loop",
           "builtin_tool", "calculator", "close_mcp_servers", "doc_search", "http_get",
           "mcp_tools", "tool"]


def builtin_tool(name: str, options: dict[str, Any] | None = None) -> Tool:
    """The built-in tool ``name`` (configured with ``options``); KeyError if there is none.

    >>> builtin_tool("calculator").name
    'calculator'
    >>> builtin_tool("http_get", {"allow": ["example.com"]}).getter.allow
    ['example.com']
    """
    options = dict(options or {})
    if name == "calculator":
        if options:
            raise TypeError("calculator takes no options")
        from ._calculator import calculator

        return calculator
    if name == "doc_search":
        return doc_search(**options)
    if name == "http_get":
        return http_get(**options)
    raise KeyError(name)


def __getattr__(name: str) -> Any:
    # The calculator is a Tool (a pydantic schema): made on first use, so imports stay light.
    if name == "calculator":
        from ._calculator import calculator

        return calculator
    raise AttributeError(f"module 'orchnb.tools' has no attribute {name!r}")
