"""Tools for agents, built from typed Python functions."""

from ._tool import Tool, as_tool, tool

__all__ = ["Tool", "as_tool", "tool"]
