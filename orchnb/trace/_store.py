"""The SQLite span store: every span is written as it ends, so a crashed kernel loses nothing done.

Writes go through a background thread that batches them (the engine's hot path only appends to
a deque); ``flush()`` waits until everything handed over is on disk. Schema changes are named,
idempotent migrations, applied once per database.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from itertools import compress
from operator import is_not
from pathlib import Path
from typing import Any

from ._span import COLUMNS, Span

_TYPES = {
    "start": "REAL", "end": "REAL", "latency_ms": "REAL", "cost_usd": "REAL", "saved_usd": "REAL",
    "confidence": "REAL", "input_tokens": "INTEGER", "output_tokens": "INTEGER",
    "cached_tokens": "INTEGER", "iteration": "INTEGER", "item": "INTEGER", "attempt": "INTEGER",
    "priced": "INTEGER", "cached": "INTEGER", "simulated": "INTEGER",
}

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_spans",
        "CREATE TABLE IF NOT EXISTS spans ("
        + ", ".join(
            f'"{c}" {_TYPES.get(c, "TEXT")}' + (" PRIMARY KEY" if c == "span_id" else "")
            for c in COLUMNS
        )
        + ");"
        "CREATE INDEX IF NOT EXISTS spans_run ON spans(run_id);"
        "CREATE INDEX IF NOT EXISTS spans_start ON spans(start);",
    ),
]


def home() -> Path:
    """Where orchnb keeps its files: ``$ORCHNB_HOME`` or ``.orchnb/`` in the working directory."""
    return Path(os.environ.get("ORCHNB_HOME") or Path.cwd() / ".orchnb")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with orchnb's migrations applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    for name, sql in MIGRATIONS:
        if name not in done:
            conn.executescript(f"BEGIN; {sql} INSERT OR IGNORE INTO _migrations "
                               f"VALUES ('{name}', julianday('now')); COMMIT;")
    return conn


_INSERT = (
    f"INSERT OR REPLACE INTO spans ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_NO_VALUES = (None,) * len(COLUMNS)
_INSERTS: dict[tuple[bool, ...], str] = {}


def _insert_for(shape: tuple[bool, ...]) -> str:
    """The INSERT naming only the columns present in ``shape`` (the others stay NULL)."""
    sql = _INSERTS.get(shape)
    if sql is None:
        names = [c for c, present in zip(COLUMNS, shape) if present]
        sql = _INSERTS[shape] = (
            f"INSERT OR REPLACE INTO spans ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})")
    return sql


class SpanStore:
    """Persists spans to ``<home>/traces.sqlite`` (WAL) from a background writer thread.

    >>> store = SpanStore(Path(tmp) / "traces.sqlite")   # doctest: +SKIP
    >>> store.write(span); store.flush()                  # doctest: +SKIP
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn = connect(self.path)
        self._queue: deque[Span] = deque()
        self._wake = threading.Event()
        self.interval = 0.02
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="orchnb-span-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, span: Span) -> None:
        """Hand a span over for writing (cheap: the writer thread does the I/O)."""
        self._queue.append(span)

    def _drain(self) -> None:
        with self._lock:
            spans = []
            while self._queue:
                spans.append(self._queue.popleft())
            # A run's span is handed over twice (as it starts and as it ends): when both are in
            # one batch, one row with its latest state is all there is to write.
            last = {id(s): i for i, s in enumerate(spans)}
            # The sqlite3 module binds a None about ten times slower than a number (it looks for
            # an adapter), and most of a span's columns are None: insert the present ones only.
            groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
            for i, span in enumerate(spans):
                if last[id(span)] == i:
                    row = span.to_row()
                    shape = tuple(map(is_not, row, _NO_VALUES))
                    groups.setdefault(shape, []).append(tuple(compress(row, shape)))
            if groups:
                self._conn.execute("BEGIN")
                for shape, rows in groups.items():
                    self._conn.executemany(_insert_for(shape), rows)
                self._conn.execute("COMMIT")

    def _loop(self) -> None:
        # Wake every few milliseconds rather than per span: waking the writer for each span
        # costs the run's thread more (GIL hand-offs) than the writes themselves.
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._queue:
                self._drain()

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every span handed over so far is committed."""
        self._drain()

    def close(self) -> None:
        """Flush and stop the writer (registered at interpreter exit)."""
        if self._closed:
            return
        self._drain()
        self._closed = True
        self._wake.set()

    def read_rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Raw rows in COLUMNS order (``where`` is an SQL condition with ? placeholders)."""
        self.flush()
        sql = f"SELECT * FROM spans {('WHERE ' + where) if where else ''} ORDER BY start"
        return self._conn.execute(sql, params).fetchall()

    def iter_rows(self, where: str = "", params: tuple[Any, ...] = (),
                  size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """``read_rows`` in chunks of ``size`` rows, read on a connection of their own (WAL lets
        the writer go on meanwhile), so a million rows never sit in memory at once."""
        self.flush()
        sql = f"SELECT * FROM spans {('WHERE ' + where) if where else ''} ORDER BY start"
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               timeout=30)
        try:
            cursor = conn.execute(sql, params)
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            conn.close()


_STORES: dict[Path, SpanStore] = {}
_STORES_LOCK = threading.Lock()


def get_store(path: Path | None = None) -> SpanStore:
    """The process-wide store for ``path`` (default: ``home()/traces.sqlite``)."""
    path = Path(path or home() / "traces.sqlite").resolve()
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = SpanStore(path)
        return store
