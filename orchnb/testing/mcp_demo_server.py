"""A tiny MCP server for tests, examples and the components notebook (needs ``orchnb[mcp]``).

Run over stdio: ``python -m orchnb.testing.mcp_demo_server``; over streamable HTTP:
``python -m orchnb.testing.mcp_demo_server --http PORT``. Flags for fault tests:
``--crash`` (exits while serving a call), ``--hang`` (``lookup`` never answers),
``--hang-start`` (never answers the handshake), ``--bad-schema`` (a tool whose input schema
refers to an external document).

>>> from orchnb import mcp_tools                                     # doctest: +SKIP
>>> tools = mcp_tools("python", ["-m", "orchnb.testing.mcp_demo_server"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import time

ORDERS = {"A100": "shipped on 2 May", "B200": "waiting for stock", "C300": "delivered"}


def build(argv: list[str]):
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("orchnb-demo")

    @server.tool()
    def lookup(order_id: str) -> str:
        """Look up the status of an order by its id (e.g. A100)."""
        if "--crash" in argv:
            print(f"crashing while looking up {order_id}", file=sys.stderr, flush=True)
            os._exit(3)
        if "--hang" in argv:
            time.sleep(3600)
        return ORDERS.get(order_id.strip().upper(), f"no order {order_id}")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    if "--bad-schema" in argv:
        from mcp.server.mcpserver.tools import Tool  # noqa: F401 - only to fail loudly if moved

        @server.tool()
        def odd(x: list[int]) -> int:
            """A tool whose schema gets replaced below by one we cannot map."""
            return len(x)

        tool = server._tool_manager.get_tool("odd")  # the SDK has no public setter for schemas
        tool.parameters = {"type": "object", "properties": {
            "x": {"$ref": "https://example.com/schemas/numbers.json"}}}
    return server


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--hang-start" in argv:
        time.sleep(3600)
    server = build(argv)
    if "--http" in argv:
        port = int(argv[argv.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()


if __name__ == "__main__":
    main()
