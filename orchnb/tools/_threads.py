"""An event loop running forever on a daemon thread, started once per name on first use.

The engine runs stepped and in-kernel runs on one (``orchnb-engine``); MCP sessions live on
another (``orchnb-mcp``). Both layers start theirs here.
"""

from __future__ import annotations

import asyncio
import threading

_LOOPS: dict[str, asyncio.AbstractEventLoop] = {}
_LOCK = threading.Lock()


def background_loop(name: str) -> asyncio.AbstractEventLoop:
    """The loop of the daemon thread ``name`` (started on first use; then the same one).

    >>> background_loop("orchnb-doc") is background_loop("orchnb-doc")
    True
    """
    with _LOCK:
        loop = _LOOPS.get(name)
        if loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                ready.set()
                loop.run_forever()

            threading.Thread(target=serve, name=name, daemon=True).start()
            ready.wait()
            _LOOPS[name] = loop
        return loop
