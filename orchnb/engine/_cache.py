"""The response cache: identical calls (provider, model, messages, tools, parameters) are paid once.

Content-addressed; kept in memory and in ``<home>/cache.sqlite`` so a re-run eval or cell, even in a
new kernel, is answered without paying again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..models import ModelRequest, ModelResponse, ToolCall, Usage
from ..trace import PerFile


def cache_key(provider: str, model: str, request: ModelRequest) -> str:
    """The content address of a call.

    >>> from orchnb.models import Message
    >>> len(cache_key("sim", "echo", ModelRequest([Message("user", "hi")])))
    32
    """
    payload = [
        provider,
        model,
        [m.to_dict() for m in request.messages],
        [(t.name, t.description, t.parameters) for t in request.tools],
        request.temperature,
        request.max_tokens,
        *((request.output_name, request.output_schema) if request.output_schema else ()),
    ]
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def dump_response(response: ModelResponse, cost: float | None) -> dict[str, Any]:
    """A response and the cost it had (None: unknown price) as the cache keeps them."""
    return {
        "text": response.text,
        "tool_calls": [[c.id, c.name, c.arguments] for c in response.tool_calls],
        "usage": [response.usage.input_tokens, response.usage.output_tokens,
                  response.usage.cached_tokens, response.usage.estimated,
                  response.usage.cache_write_tokens, response.usage.cache_write_1h_tokens],
        "model": response.model,
        "finish_reason": response.finish_reason,
        "simulated": response.simulated,
        "cost": cost,
        **({"service_tier": response.service_tier} if response.service_tier else {}),
    }


def load_response(d: Any) -> tuple[ModelResponse, float | None]:
    """The response and its original cost back from :func:`dump_response`'s form."""
    usage = Usage(*d["usage"])  # entries written before cache writes were kept have 4
    response = ModelResponse(
        text=d["text"],
        tool_calls=[ToolCall(*c) for c in d["tool_calls"]],
        usage=usage,
        model=d["model"],
        finish_reason=d["finish_reason"],
        simulated=d["simulated"],
        service_tier=d.get("service_tier"),
    )
    return response, d["cost"]


class ResponseCache:
    """Memory + SQLite cache of model responses with the cost each one would have had.

    >>> cache = ResponseCache(Path(tmp) / "cache.sqlite")   # doctest: +SKIP
    """

    def __init__(self, path: Path, memory_items: int = 100_000):
        self.path = path
        self._memory: dict[str, str] = {}
        self._memory_items = memory_items
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Several kernels share one cache: wait for a writer as long as the span store does.
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT, "
                "created REAL DEFAULT (julianday('now')))"
            )
            self._conn = conn
        return self._conn

    def get_json(self, key: str) -> Any | None:
        """A cached JSON value, or None."""
        raw = self._memory.get(key)
        if raw is None:
            with self._lock:
                row = self._db().execute(
                    "SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            raw = self._remember(key, row[0])
        return json.loads(raw)

    def put_json(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON-able) under ``key``, in memory and on disk."""
        raw = self._remember(key, json.dumps(value))
        with self._lock:
            self._db().execute("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)",
                               (key, raw))

    def _remember(self, key: str, raw: str) -> str:
        if len(self._memory) >= self._memory_items:
            self._memory.pop(next(iter(self._memory)))
        self._memory[key] = raw
        return raw

    def clear(self) -> None:
        """Forget every cached response."""
        self._memory.clear()
        with self._lock:
            self._db().execute("DELETE FROM responses")


_CACHES: PerFile[ResponseCache] = PerFile(ResponseCache, "cache.sqlite")


def get_cache(path: Path | None = None) -> ResponseCache:
    """The process-wide response cache (default ``home()/cache.sqlite``)."""
    return _CACHES.get(path)
