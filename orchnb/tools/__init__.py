"""Tools for agents, built from typed Python functions or served by MCP servers."""

from ._mcp import MCPTool, close_mcp_servers, mcp_tools
from ._tool import Tool, as_tool, tool

__all__ = ["MCPTool", "Tool", "as_tool", "close_mcp_servers", "mcp_tools", "tool"]
