"""The processes of stdio MCP servers: which one a session started, how it ended, and a hard
stop for any still running when the tools are closed or Python exits.

The mcp SDK's ``stdio_client`` owns the process and hides it; its shutdown (close stdin, wait,
SIGTERM, SIGKILL) only runs while its task does, so a server that hangs when the interpreter
exits (or whose session was abandoned after a timeout) outlived the kernel. We wrap the SDK's
spawn function once to learn each process a session of ours starts (a context variable set in
that session's task says where to record it; nobody else's spawns are touched), and kill the
process group of any that is still running at close.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from contextvars import ContextVar
from typing import Any

_SPAWNED: ContextVar[list[Any] | None] = ContextVar("orchnb_mcp_spawned", default=None)


def watch_spawns(sink: list[Any]) -> None:
    """Record in ``sink`` each server process the SDK starts from the current task."""
    _install()
    _SPAWNED.set(sink)


def _install() -> None:
    try:
        from mcp.client import stdio
    except ImportError:  # pragma: no cover - only called once the SDK is in use
        return
    original = getattr(stdio, "_create_platform_compatible_process", None)
    if original is None or getattr(original, "orchnb_watch", False):
        return  # another SDK layout (no hard stop then: the SDK's own shutdown remains) or done

    async def spawn(*args: Any, **kwargs: Any) -> Any:
        process = await original(*args, **kwargs)
        sink = _SPAWNED.get()
        if sink is not None:
            sink.append(process)
        return process

    spawn.orchnb_watch = True  # type: ignore[attr-defined]
    stdio._create_platform_compatible_process = spawn


def how_it_ended(process: Any) -> str:
    """``exited with code 3`` / ``was killed by signal SIGKILL`` / ``is still running``."""
    code = getattr(process, "returncode", None)
    if code is None:
        return "is still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def stop(processes: list[Any], grace: float = 0.5) -> int:
    """SIGTERM each running process's group, SIGKILL what is left after ``grace`` seconds.

    Called from any thread (also at interpreter exit, when the MCP loop may be stuck); returns
    how many were running. Finished processes are dropped from the list.
    """
    running = [p for p in processes if getattr(p, "returncode", 0) is None]
    processes[:] = running
    for p in running:
        _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in running):
        time.sleep(0.02)
    for p in running:
        if _alive(p):
            _signal(p, getattr(signal, "SIGKILL", signal.SIGTERM))
    return len(running)


def _signal(process: Any, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if sys.platform != "win32":
            os.killpg(process.pid, sig)  # the SDK starts each server in a session of its own
        else:  # pragma: no cover
            os.kill(process.pid, sig)


def _alive(process: Any) -> bool:
    if getattr(process, "returncode", None) is not None:
        return False
    if sys.platform == "win32":  # pragma: no cover
        return True
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
