"""Tools from MCP servers (the official ``mcp`` SDK, ``pip install 'orchnb[mcp]'``).

An MCP session is an async context manager bound to the event loop (and the task) that entered
it, while runs execute on the caller's loop, a per-thread loop or the engine's loop. So every
session lives in one task of its own on one background loop thread (``orchnb-mcp``), started
with the first server: the task enters the transport and the session, serves calls until it is
told to stop, and leaves them again. Calls from any loop are handed to that thread and awaited
there, so ``pipe(x)`` works from any cell, any number of times. A server that crashes or stops
answering is torn down (its process killed) and started again on the next call; every wait has
a timeout, so a broken server never hangs the kernel. When the tools are closed or Python
exits, every server process still running is stopped (SIGTERM to its group, SIGKILL after a
short grace), hung or not. An error quotes how the server process ended (exit code or signal)
and only the stderr it wrote during the failing call (or start).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import shlex
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import OrchnbError, SpecError, ToolError
from ..models import ToolSpec
from . import _mcp_process
from ._threads import background_loop
from ._tool import Tool

_INSTALL = "MCP tools need the mcp SDK: pip install 'orchnb[mcp]'"
_TYPES = frozenset({"object", "string", "integer", "number", "boolean", "array", "null"})


class MCPTool(Tool):
    """A tool served by an MCP server; made by :func:`mcp_tools`, used like any tool (the call
    is a tool span, with approval, timeout and budget, on the engine's guarded path).

    >>> tools = mcp_tools("python", ["-m", "orchnb.testing.mcp_demo_server"])  # doctest: +SKIP
    >>> [t.name for t in tools]                                             # doctest: +SKIP
    ['lookup', 'add']
    """

    def __init__(self, server: _Server, name: str, description: str | None,
                 schema: dict[str, Any]):
        _check_schema(server.label, name, schema)
        self.server = server
        self.name = name
        self.description = (description or "").strip() or name
        self.is_async = True
        params = {k: v for k, v in schema.items() if k not in ("title", "$schema")}
        params.setdefault("properties", {})
        self.spec = ToolSpec(name, self.description, params)
        self._validator: Any = None

    @property
    def yaml_spec(self) -> dict[str, Any]:
        """The YAML ``tools:`` entry that serves this tool: ``{mcp: {command, args, env}}``
        or ``{mcp: {url}}`` (what ``to_yaml`` writes)."""
        return {"mcp": self.server.spec()}

    def fn(self, **arguments: Any) -> Any:
        """Call the tool synchronously (outside a run, e.g. to try it in a cell)."""
        return self.server.call_sync(self.name, self.validate(arguments))

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Arguments checked against the server's JSON schema; a ToolError says what is wrong."""
        if self._validator is None:
            from jsonschema import Draft202012Validator  # a dependency of the mcp SDK

            self._validator = Draft202012Validator(self.spec.parameters)
        problems = [f"{'.'.join(str(p) for p in e.absolute_path) or '(arguments)'}: {e.message}"
                    for e in self._validator.iter_errors(arguments)]
        if problems:
            raise ToolError(f"tool '{self.name}': invalid arguments {arguments!r}: "
                            + "; ".join(problems))
        return dict(arguments)

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        return await self.server.call(self.name, self.validate(arguments))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise TypeError(f"MCP tool '{self.name}' takes keyword arguments only")
        return self.fn(**kwargs)

    def __repr__(self) -> str:
        return f"MCPTool({self.name!r}, server={self.server.label!r})"


def mcp_tools(command: str | None = None, args: Sequence[str] = (),
              env: Mapping[str, str] | None = None, *, url: str | None = None,
              include: Sequence[str] | None = None, timeout: float = 60.0,
              connect_timeout: float = 30.0) -> list[MCPTool]:
    """The tools of an MCP server, as orchnb tools any Agent or Team member takes.

    A stdio server is started with ``command`` and ``args`` (``env`` is merged over a safe
    default environment); ``url=`` connects to a streamable-HTTP server instead. The session
    starts now (to list the tools), is shared by every call and every run, is restarted if the
    server dies, and closes when Python exits. ``include`` keeps only the named tools.
    ``timeout`` bounds each call, ``connect_timeout`` the start and the tool listing.

    >>> demo = ["-m", "orchnb.testing.mcp_demo_server"]
    >>> tools = orchnb.mcp_tools("python", demo)                                # doctest: +SKIP
    >>> agent = orchnb.Agent("support", "openai:gpt-4o-mini", [lookup, tools])  # doctest: +SKIP
    >>> orchnb.mcp_tools(url="http://127.0.0.1:8000/mcp")                       # doctest: +SKIP
    """
    if (command is None) == (url is None):
        raise SpecError("mcp_tools needs a command (a stdio server) or url= (a streamable-HTTP "
                        "server), not both", key="mcp")
    if isinstance(args, str):
        raise SpecError(f"mcp_tools: args must be a list of strings, got the string {args!r}; "
                        f"e.g. args=['-m', 'my_server']", key="mcp.args")
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise OrchnbError(_INSTALL) from None
    server = _server(command, [str(a) for a in args], dict(env or {}), url, timeout,
                     connect_timeout)
    listed = server.list_sync()
    names = [t.name for t in listed]
    if include is not None:
        missing = sorted(set(include) - set(names))
        if missing:
            raise SpecError(f"{server.label} has no tool(s) {', '.join(missing)}; it serves: "
                            f"{', '.join(names) or '(none)'}", key="mcp.include")
    return [MCPTool(server, t.name, t.description, dict(t.input_schema)) for t in listed
            if include is None or t.name in include]


def close_mcp_servers(grace: float = 2.0) -> None:
    """Stop every MCP server this process started (done at exit; safe to call any time).

    Each session is asked to end (the server's stdin closes); a server process still running
    after ``grace`` seconds has its process group terminated, then killed.
    """
    servers = list(_SERVERS.values())
    _SERVERS.clear()
    pending = [f for f in (server.begin_close() for server in servers) if f is not None]
    if pending:
        concurrent.futures.wait(pending, timeout=grace)
    for server in servers:
        _mcp_process.stop(server.processes, grace=0.5)


# -- one background loop for every session --------------------------------------------------------
_SERVERS: dict[tuple[Any, ...], _Server] = {}
_AT_EXIT: list[bool] = []


def _mcp_loop() -> asyncio.AbstractEventLoop:
    if not _AT_EXIT:
        _AT_EXIT.append(True)
        atexit.register(close_mcp_servers)
    return background_loop("orchnb-mcp")


def _server(command: str | None, args: list[str], env: dict[str, str], url: str | None,
            timeout: float, connect_timeout: float) -> _Server:
    key = (command, tuple(args), tuple(sorted(env.items())), url)
    server = _SERVERS.get(key)
    if server is None or server.closed:
        server = _SERVERS[key] = _Server(command, args, env, url)
    server.timeout, server.connect_timeout = timeout, connect_timeout
    return server


class _Server:
    """One MCP server and its session, owned by a task on the MCP loop."""

    def __init__(self, command: str | None, args: list[str], env: dict[str, str],
                 url: str | None):
        self.command, self.args, self.env, self.url = command, args, env, url
        what = url if url is not None else shlex.join([command or "", *args])
        self.label = f"MCP server `{what}`"
        self.timeout = 60.0
        self.connect_timeout = 30.0
        self.closed = False
        self._ready: asyncio.Future[Any] | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._dying: set[asyncio.Task[None]] = set()
        """Sessions given up on (a timeout) that are still winding down."""
        self._errlog: Any = None
        self._err_start = 0
        """Where the current server process's stderr starts in the log."""
        self.processes: list[Any] = []
        """Server processes started and not yet seen to end (stopped hard at close)."""

    def spec(self) -> dict[str, Any]:
        if self.url is not None:
            return {"url": self.url}
        out: dict[str, Any] = {"command": self.command, "args": list(self.args)}
        if self.env:
            out["env"] = dict(self.env)
        return out

    # -- from any thread --------------------------------------------------------------------------
    def list_sync(self) -> list[Any]:
        return self._wait(self._list(), self.connect_timeout * 2 + 15)

    def call_sync(self, name: str, arguments: dict[str, Any]) -> Any:
        return self._wait(self._call(name, arguments), self.connect_timeout + self.timeout + 15)

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call a tool from any event loop (the work happens on the MCP loop)."""
        fut = asyncio.run_coroutine_threadsafe(self._call(name, arguments), _mcp_loop())
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            fut.cancel()  # the engine's timeout or a cancelled run: stop the call there too
            raise

    def close(self, grace: float = 2.0) -> None:
        """End the session and stop the server process (hard, after ``grace`` seconds)."""
        fut = self.begin_close()
        if fut is not None:
            concurrent.futures.wait([fut], timeout=grace)
        _mcp_process.stop(self.processes, grace=0.5)

    def begin_close(self) -> concurrent.futures.Future[Any] | None:
        """Ask the session (and any winding down) to end; the future is done when they have."""
        self.closed = True
        if self._task is None and not self._dying:
            return None
        if threading.current_thread().name == "orchnb-mcp":
            return None
        with contextlib.suppress(Exception):  # closing at exit must never raise
            return asyncio.run_coroutine_threadsafe(self._shutdown_all(), _mcp_loop())
        return None

    async def _shutdown_all(self) -> None:
        await self._shutdown()
        dying = [t for t in self._dying if not t.done()]
        if dying:
            await asyncio.wait(dying, timeout=8)

    def _wait(self, coro: Any, limit: float) -> Any:
        loop = _mcp_loop()
        if threading.current_thread().name == "orchnb-mcp":
            coro.close()
            raise ToolError(f"{self.label}: cannot wait for MCP from the MCP thread itself")
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise ToolError(f"{self.label} did not answer within {limit:g}s") from None

    # -- on the MCP loop ----------------------------------------------------------------------
    async def _list(self) -> list[Any]:
        session = await self._connected()
        try:
            async with asyncio.timeout(self.connect_timeout):
                result = await session.list_tools()
        except Exception as e:
            await self._shutdown()
            raise self._error("could not list its tools", e, self._err_start) from None
        return list(result.tools)

    async def _call(self, name: str, arguments: dict[str, Any]) -> str:
        session = await self._connected()
        since = self._errlog_end()
        call = asyncio.ensure_future(session.call_tool(name, arguments))
        call.add_done_callback(lambda f: f.cancelled() or f.exception())  # read below or dropped
        dead = asyncio.ensure_future(self._wait_dead())
        try:
            done, _ = await asyncio.wait({call, dead}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            dead.cancel()
        if call not in done:
            call.cancel()
            self._kill()  # a hung server is killed; the next call starts a new one
            if dead in done:
                raise self._error(f"stopped while serving '{name}'", None, since)
            raise ToolError(f"tool '{name}' on {self.label} timed out after {self.timeout:g}s "
                            f"(the server was stopped; the next call restarts it)")
        try:
            result = call.result()
        except Exception as e:
            await self._shutdown()
            raise self._error(f"failed while serving '{name}'", e, since) from None
        text = _result_text(result)
        if getattr(result, "is_error", False):
            raise ToolError(text or f"tool '{name}' on {self.label} reported an error")
        return text

    async def _wait_dead(self) -> None:
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def _connected(self) -> Any:
        if self.closed:
            raise ToolError(f"{self.label} was closed; call orchnb.mcp_tools(...) again")
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._ready, self._stop = loop.create_future(), asyncio.Event()
            # Whoever waits reads the outcome; a start nobody waits for any more is not an error.
            self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._task = loop.create_task(self._serve(self._ready, self._stop))
        ready = self._ready
        assert ready is not None
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await asyncio.shield(ready)
        except TimeoutError:
            self._kill()
            raise ToolError(f"{self.label} did not finish starting within "
                            f"{self.connect_timeout:g}s (no answer to the MCP handshake); check "
                            f"that the command starts an MCP server on stdio"
                            + self._stderr_tail(self._err_start)) from None
        except ToolError:
            raise
        except Exception as e:
            raise self._error("failed to start", e, self._err_start) from None

    async def _serve(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        from mcp import ClientSession

        _mcp_process.watch_spawns(self.processes)  # this task's spawns only
        try:
            async with self._transport() as streams, ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                ready.set_result(s)
                await stop.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else ToolError(repr(e)))
            elif not isinstance(e, (Exception, asyncio.CancelledError)):
                raise
        finally:
            if not ready.done():
                ready.set_exception(ToolError(f"{self.label} stopped"))

    def _transport(self) -> Any:
        if self.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            return streamable_http_client(self.url)
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        # ipykernel replaces sys.stderr with an object without a file descriptor, which a
        # subprocess cannot inherit: the server's stderr goes to a file of ours instead (its
        # tail is quoted in errors).
        if self._errlog is None:
            self._errlog = tempfile.TemporaryFile(  # noqa: SIM115 - lives as long as the server
                "w+", encoding="utf-8", errors="replace")
        self._err_start = self._errlog_end()  # a new process: its stderr starts here
        params = StdioServerParameters(command=self.command or "", args=self.args,
                                       env=self.env or None, cwd=os.getcwd())
        return stdio_client(params, errlog=self._errlog)

    async def _shutdown(self) -> None:
        task, stop = self._task, self._stop
        if task is None or task.done() or stop is None:
            return
        stop.set()
        try:
            async with asyncio.timeout(8):
                await asyncio.shield(task)
        except BaseException:
            task.cancel()

    def _kill(self) -> None:
        # Cancelling the owner task leaves the transport, whose (shielded) shutdown stops the
        # server process: no waiting on a server that does not answer.
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            self._dying.add(task)  # close() waits for it (and stops its process if it hangs)
            task.add_done_callback(self._dying.discard)
        self._task = None  # the next call starts a new session while this one winds down

    def _error(self, what: str, e: BaseException | None, since: int) -> ToolError:
        cause = _describe(e) if e is not None else ""
        hint = ""
        if isinstance(e, FileNotFoundError):
            hint = f"; is `{self.command}` installed and on PATH?"
        ended = ""
        if self.url is None and self.processes:
            state = _mcp_process.how_it_ended(self.processes[-1])
            ended = "" if state == "is still running" else f" (the server process {state})"
        return ToolError(f"{self.label} {what}" + (f": {cause}" if cause else "") + hint
                         + ended + self._stderr_tail(since))

    def _errlog_end(self) -> int:
        log = self._errlog
        if log is None:
            return 0
        try:
            log.flush()
            return log.seek(0, 2)
        except (OSError, ValueError):
            return 0

    def _stderr_tail(self, since: int) -> str:
        """The last lines the server wrote to stderr after offset ``since`` (this failure's)."""
        log = self._errlog
        if log is None:
            return ""
        try:
            log.flush()
            log.seek(since)
            tail = log.read()[-600:].strip()
            log.seek(0, 2)
        except (OSError, ValueError):
            return ""
        return f"\nserver stderr (last lines):\n{tail}" if tail else ""


def _describe(e: BaseException) -> str:
    # anyio task groups wrap the real error in (nested) exception groups.
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _result_text(result: Any) -> str:
    parts = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource" and hasattr(block.resource, "text"):
            parts.append(block.resource.text)
        else:
            parts.append(f"[{kind or 'content'}]")
    if not parts and getattr(result, "structured_content", None) is not None:
        import json

        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


def _check_schema(label: str, tool: str, schema: Any) -> None:
    """A schema we can hand to a model and validate against, or a SpecError saying why not."""
    def fail(why: str) -> SpecError:
        return SpecError(f"{label}: tool '{tool}' has an input schema orchnb cannot use ({why}); "
                         f"leave it out with mcp_tools(..., include=[...])", key="mcp")

    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise fail("the top level must be a JSON object schema")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                raise fail(f"{path or 'schema'} refers to the external document {ref!r}")
            kind = node.get("type")
            kinds = kind if isinstance(kind, list) else [kind]
            for k in kinds:
                if isinstance(k, str) and k not in _TYPES:
                    raise fail(f"{path or 'schema'} has the unknown type {k!r}")
            for key, value in node.items():
                if key not in ("default", "enum", "const", "examples"):  # values, not schemas
                    walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(schema, "")
