"""The SQLite span store: every span is written as it ends, so a crashed kernel loses nothing done.

Writes go through a background thread that batches them (the engine's hot path only appends to
a deque); ``flush()`` waits until everything handed over is on disk. Each batch is first
appended to a log table as one row (about 1 µs a span, so persisting barely slows a run); the
writer moves logged spans into the indexed ``spans`` table once the run goes quiet (or the log
grows long), and every read does so first. Schema changes are named, idempotent migrations,
applied once per database.
"""

from __future__ import annotations

import atexit
import marshal
import os
import sqlite3
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from itertools import compress, pairwise
from operator import is_not
from pathlib import Path
from typing import Any, Generic, TypeVar

from ._span import COLUMNS, Span

T = TypeVar("T")

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
    (
        "002_span_log",
        # Batches of finished spans (marshal'ed lists of rows) not yet moved into ``spans``.
        "CREATE TABLE IF NOT EXISTS span_log (id INTEGER PRIMARY KEY, rows BLOB NOT NULL);",
    ),
]


def home_key() -> tuple[str | None, str | None]:
    """What the default home depends on, cheaply: ``$ORCHNB_HOME``, else the working directory.
    Per-home objects are looked up by this on every run (resolving paths costs ~20 µs)."""
    env = os.environ.get("ORCHNB_HOME")
    return env, None if env else os.getcwd()


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
        self.quiet = 0.05
        """Seconds without new spans after which the writer compacts the log."""
        self.max_log = 20_000
        """Spans in the log that make the writer compact even while spans keep coming."""
        self._lock = threading.Lock()
        self._closed = False
        # Spans a crashed kernel left in the log are compacted soon, not only at the next read.
        self._logged = self._conn.execute("SELECT count(*) FROM span_log").fetchone()[0]
        """Spans (at least) in the log since the last compaction."""
        self._last_write = 0.0
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
            rows = [s.to_row() for i, s in enumerate(spans) if last[id(s)] == i]
            if rows:
                self._conn.execute("INSERT INTO span_log (rows) VALUES (?)",
                                   (marshal.dumps(rows),))
                self._logged += len(rows)
                self._last_write = time.monotonic()

    def compact(self) -> None:
        """Move the logged spans into the ``spans`` table (reads call this first)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                batches = self._conn.execute(
                    "SELECT id, rows FROM span_log ORDER BY id").fetchall()
                latest: dict[str, tuple[Any, ...]] = {}
                for _, blob in batches:
                    try:
                        logged = marshal.loads(blob)
                    except (EOFError, ValueError, TypeError):  # e.g. from another Python version
                        warnings.warn(f"{self.path}: dropped a batch of logged spans this Python "
                                      "cannot read", RuntimeWarning, stacklevel=2)
                        continue
                    for row in logged:
                        latest[row[1]] = row  # by span_id: a span's last logged state wins
                # The sqlite3 module binds a None about ten times slower than a number (it looks
                # for an adapter), and most of a span's columns are None: bind the present ones.
                groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
                for row in latest.values():
                    shape = tuple(map(is_not, row, _NO_VALUES))
                    groups.setdefault(shape, []).append(tuple(compress(row, shape)))
                for shape, rows in groups.items():
                    self._conn.executemany(_insert_for(shape), rows)
                if batches:
                    self._conn.execute("DELETE FROM span_log WHERE id <= ?", (batches[-1][0],))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._logged = 0

    def _loop(self) -> None:
        # Wake every few milliseconds rather than per span: waking the writer for each span
        # costs the run's thread more (GIL hand-offs) than the writes themselves.
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._queue:
                self._drain()
            if self._logged and (self._logged >= self.max_log
                                 or time.monotonic() - self._last_write >= self.quiet):
                self.compact()

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every span handed over so far is committed (to the log, at least)."""
        self._drain()

    def close(self) -> None:
        """Flush and stop the writer (registered at interpreter exit)."""
        if self._closed:
            return
        self._drain()
        self.compact()
        self._closed = True
        self._wake.set()

    def read_rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Raw rows in COLUMNS order (``where`` is an SQL condition with ? placeholders)."""
        self.flush()
        self.compact()
        sql = f"SELECT * FROM spans {('WHERE ' + where) if where else ''} ORDER BY start"
        return self._conn.execute(sql, params).fetchall()

    def iter_rows(self, where: str = "", params: tuple[Any, ...] = (),
                  size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """``read_rows`` in chunks of ``size`` rows, read on a connection of their own (WAL lets
        the writer go on meanwhile), so a million rows never sit in memory at once."""
        self.flush()
        self.compact()
        sql = _select(where)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               timeout=30)
        try:
            cursor = conn.execute(sql, params)
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            conn.close()


    def read_arrow(self, where: str = "", params: tuple[Any, ...] = ()) -> Any | None:
        """The spans as an Arrow table through ADBC's SQLite driver (C, several times faster than
        the sqlite3 module for large stores), or None when that driver is not installed."""
        try:
            import adbc_driver_sqlite.dbapi as adbc
        except ImportError:
            return None
        import pyarrow as pa

        self.flush()
        self.compact()
        parts = self._start_ranges(where, params)

        def fetch(part: tuple[str, tuple[Any, ...]]) -> Any:
            with adbc.connect(str(self.path)) as conn, conn.cursor() as cursor:
                cursor.execute(_typed_select(part[0]), part[1] or None)
                return _drop_typed_row(cursor.fetch_arrow_table())

        if len(parts) == 1:
            return fetch(parts[0])
        # The driver works in C without the GIL: large stores are read in start-ordered slices
        # on all cores, and the slices concatenate in order.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(parts)) as pool:
            return pa.concat_tables(list(pool.map(fetch, parts)))

    def _start_ranges(self, where: str, params: tuple[Any, ...],
                      slice_rows: int = 250_000) -> list[tuple[str, tuple[Any, ...]]]:
        """``(where, params)`` for slices of the rows by ``start`` (one when the read is small)."""
        base = f"({where}) AND " if where else ""
        n = self._conn.execute(f"SELECT count(*) FROM spans {('WHERE ' + where) if where else ''}",
                               params).fetchone()[0]
        k = min(os.cpu_count() or 1, n // slice_rows)
        if k < 2:
            return [(where, params)]
        cuts = [self._conn.execute(f"SELECT start FROM spans {('WHERE ' + where) if where else ''} "
                                   "ORDER BY start LIMIT 1 OFFSET ?", (*params, n * i // k)
                                   ).fetchone()[0] for i in range(1, k)]
        bounds = [None, *cuts, None]
        out = []
        for lo, hi in pairwise(bounds):
            cond = " AND ".join(c for c in (
                "start >= ?" if lo is not None else "", "start < ?" if hi is not None else "") if c)
            values = tuple(v for v in (lo, hi) if v is not None)
            out.append((base + f"({cond})", (*params, *values)))
        return out


def _select(where: str) -> str:
    return f"SELECT * FROM spans {('WHERE ' + where) if where else ''} ORDER BY start"


# ADBC's SQLite driver types each column by the values in its first rows (1,024), not by the
# declared type: a column NULL there becomes INT64 and a REAL further down fails the whole read
# (router ``confidence`` after a run of chains). The fast read therefore starts with one row of
# typed placeholders (start = -inf sorts it first; real starts are finite) and drops it.
_PLACEHOLDER = {"REAL": "0.0", "INTEGER": "0", "TEXT": "''"}
_TYPED_ROW = "SELECT " + ", ".join(
    ("-9e999" if c == "start" else _PLACEHOLDER[_TYPES.get(c, "TEXT")]) + f' AS "{c}"'
    for c in COLUMNS)


def _typed_select(where: str) -> str:
    return (f"{_TYPED_ROW} UNION ALL SELECT * FROM spans "
            f"{('WHERE ' + where) if where else ''} ORDER BY start")


def _drop_typed_row(table: Any) -> Any:
    """``table`` without the placeholder row of :func:`_typed_select` (its first row, unless a
    foreign writer left NULL starts, which sort before it)."""
    import pyarrow.compute as pc

    start = table.column("start")
    if start[0].as_py() == float("-inf"):
        return table.slice(1)
    return table.filter(pc.fill_null(pc.not_equal(start, float("-inf")), True))


class PerFile(Generic[T]):
    """One shared object per database file, found cheaply for the default home on every run
    (resolving paths costs ~20 µs, so the default is remembered per :func:`home_key`).

    >>> stores = PerFile(SpanStore, "traces.sqlite")   # doctest: +SKIP
    >>> stores.get() is stores.get()                   # doctest: +SKIP
    True
    """

    def __init__(self, make: Callable[[Path], T], filename: str):
        self._make, self._filename = make, filename
        self._by_path: dict[Path, T] = {}
        self._by_home: dict[tuple[str | None, str | None], T] = {}
        self._lock = threading.Lock()

    def get(self, path: Path | None = None) -> T:
        if path is None:
            key = home_key()
            obj = self._by_home.get(key)
            if obj is None:
                obj = self._by_home[key] = self.get(home() / self._filename)
            return obj
        path = Path(path).resolve()
        with self._lock:
            obj = self._by_path.get(path)
            if obj is None:
                obj = self._by_path[path] = self._make(path)
            return obj


_STORES: PerFile[SpanStore] = PerFile(SpanStore, "traces.sqlite")


def get_store(path: Path | None = None) -> SpanStore:
    """The process-wide store for ``path`` (default: ``home()/traces.sqlite``)."""
    return _STORES.get(path)
