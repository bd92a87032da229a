"""``python -m orchnb serve``: one pipeline behind a small ASGI app (``pip install
'orchnb[serve]'``: Starlette and uvicorn).

* ``POST /run`` with ``{"input": ...}`` → ``{"output", "run_id", "status", "cost_usd"}``
  (200), or the same with ``"error"`` when the run failed (500; ``status`` says how:
  ``error``, ``budget_exceeded``, ``max_iterations``, ``cancelled``);
* ``GET /health`` → ``{"status": "ok", "pipeline", "pattern"}``.

A bad request is a 400 JSON error, a body over :data:`MAX_BODY_BYTES` a 413. Runs go through
the same engine as in the notebook (budget, cache, traces in the store under ORCHNB_HOME).
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

from ._runner import CliError, record_of

MAX_BODY_BYTES = 10_000_000
"""Largest request body accepted (10 MB)."""


def create_app(pipe: Any, options: dict[str, Any] | None = None) -> Any:
    """The Starlette app serving ``pipe``.

    >>> app = create_app(orchnb.from_yaml(text))      # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    try:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError:
        raise CliError("serving needs Starlette and uvicorn: pip install 'orchnb[serve]'"
                       ) from None
    run_options = dict(options or {})

    def error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"status": kind, "error": message, **extra}, status_code=status)

    async def run(request: Request) -> JSONResponse:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
            return error(413, "bad_request", f"the body is over {MAX_BODY_BYTES:,} bytes")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return error(413, "bad_request", f"the body is over {MAX_BODY_BYTES:,} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return error(400, "bad_request", f"the body is not JSON: {e}; send "
                                             '{"input": "..."}')
        if not isinstance(data, dict) or "input" not in data:
            return error(400, "bad_request", 'send a JSON object with an "input" key, e.g. '
                                             '{"input": "some text"}')
        try:
            result = await pipe.arun(data["input"], **run_options)
        except Exception as e:  # the run failed: its record, with what went wrong
            failed = getattr(e, "run", None)
            record = record_of(failed) if failed is not None else {
                "output": None, "run_id": None, "status": "error", "cost_usd": None}
            record["error"] = f"{type(e).__name__}: {' '.join(str(e).split())}"
            return JSONResponse(record, status_code=500)
        return JSONResponse(record_of(result))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "pipeline": pipe.name, "pattern": pipe.pattern})

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        code = getattr(exc, "status_code", 500)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(code, "error")
        return error(code, kind, f"{request.method} {request.url.path}: "
                                 f"{getattr(exc, 'detail', exc)}; use POST /run or GET /health")

    app = Starlette(routes=[Route("/run", run, methods=["POST"]),
                            Route("/health", health, methods=["GET"])],
                    exception_handlers={HTTPException: http_error})
    app.state.pipeline = pipe
    return app


def serve(pipe: Any, *, host: str = "127.0.0.1", port: int = 8000,
          options: dict[str, Any] | None = None) -> int:
    """Serve until interrupted; prints ``serving NAME on http://HOST:PORT`` once listening
    (``port=0`` picks a free port, shown there)."""
    app = create_app(pipe, options)
    try:
        import uvicorn
    except ImportError:
        raise CliError("serving needs Starlette and uvicorn: pip install 'orchnb[serve]'"
                       ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"orchnb: serving '{pipe.name}' ({pipe.pattern}) on http://{shown}:{bound} "
          f"(POST /run, GET /health; Ctrl-C stops)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
