"""The SQLite span store: every span is written as it ends, so a crashed kernel loses nothing done.

Writes go through a background thread that batches them (the engine's hot path only appends to
a deque); ``flush()`` waits until everything handed over is on disk. Each batch is first
appended to a log table as one row of JSON (a few µs a span, so persisting barely slows a run);
the writer moves logged spans into the indexed ``spans`` table once the run goes quiet (or the
log grows long), and every read does so first. Schema changes are named, idempotent migrations,
applied once per database; ``PRAGMA user_version`` records how many, and a store written by a
newer orchnb (more migrations than this one knows) is refused rather than misread.

What the store reads back is only ever parsed as JSON (never unmarshalled or unpickled), so a
tampered file cannot run code or crash the reader, and every text written is scrubbed of API
keys (``orchnb.models.scrub_secrets``) as a last line of defence.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
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

from ..exceptions import OrchnbError
from ..models import needs_scrub, refresh_secrets, scrub_secrets
from ._span import COLUMNS, Span

T = TypeVar("T")

_TYPES = {
    "start": "REAL", "end": "REAL", "latency_ms": "REAL", "cost_usd": "REAL", "saved_usd": "REAL",
    "confidence": "REAL", "input_tokens": "INTEGER", "output_tokens": "INTEGER",
    "cached_tokens": "INTEGER", "iteration": "INTEGER", "item": "INTEGER", "attempt": "INTEGER",
    "priced": "INTEGER", "cached": "INTEGER", "simulated": "INTEGER", "ttft_ms": "REAL",
    "replayed": "INTEGER", "usage_estimated": "INTEGER",
}
# Columns added by later migrations are not in the first one (its SQL must never change).
_LATER = {"ttft_ms", "replayed", "forked_from", "worker", "usage_estimated"}

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_spans",
        "CREATE TABLE IF NOT EXISTS spans ("
        + ", ".join(
            f'"{c}" {_TYPES.get(c, "TEXT")}' + (" PRIMARY KEY" if c == "span_id" else "")
            for c in COLUMNS if c not in _LATER
        )
        + ");"
        "CREATE INDEX IF NOT EXISTS spans_run ON spans(run_id);"
        "CREATE INDEX IF NOT EXISTS spans_start ON spans(start);",
    ),
    (
        "002_span_log",
        # Batches in marshal format (up to orchnb's schema 2): never read any more, see 003.
        "CREATE TABLE IF NOT EXISTS span_log (id INTEGER PRIMARY KEY, rows BLOB NOT NULL);",
    ),
    (
        "003_span_batches_json",
        # Batches of finished spans (JSON lists of rows) not yet moved into ``spans``. Reading
        # marshal data from a file is unsafe, so batches an older orchnb left in ``span_log``
        # (only after a crash: closing compacts them) stay there, unread; see connect().
        "CREATE TABLE IF NOT EXISTS span_batches (id INTEGER PRIMARY KEY, rows TEXT NOT NULL);",
    ),
    ("004_ttft", 'ALTER TABLE spans ADD COLUMN "ttft_ms" REAL;'),
    (
        "005_fork",
        # Replayed calls and forked runs (run.fork / run.replay), and what a run needs to be
        # rebuilt in a new kernel (orchnb.load_run): its %%orch YAML and a non-text input.
        'ALTER TABLE spans ADD COLUMN "replayed" INTEGER;'
        'ALTER TABLE spans ADD COLUMN "forked_from" TEXT;'
        "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, spec TEXT, input TEXT);",
    ),
    ("006_worker", 'ALTER TABLE spans ADD COLUMN "worker" TEXT;'),
    (
        "007_heartbeats",
        # Which process wrote each run, and when that process was last seen alive: a run whose
        # writer is gone reads back as "crashed", not as "running" for ever.
        "CREATE TABLE IF NOT EXISTS writers (token TEXT PRIMARY KEY, pid INTEGER, host TEXT, "
        "heartbeat REAL);"
        "CREATE TABLE IF NOT EXISTS run_writers (run_id TEXT PRIMARY KEY, token TEXT);",
    ),
    ("008_usage_estimated", 'ALTER TABLE spans ADD COLUMN "usage_estimated" INTEGER;'),
]
SCHEMA_VERSION = len(MIGRATIONS)
"""The store schema this orchnb writes (``PRAGMA user_version``); newer stores are refused."""

_TEXT_COLUMNS = _E, _I, _O, _R, _M = tuple(
    COLUMNS.index(c) for c in ("error", "input", "output", "raw_label", "meta"))
_RUN_ID, _KIND, _STATUS = (COLUMNS.index(c) for c in ("run_id", "kind", "status"))

HEARTBEAT = 1.0
"""Seconds between a writer's heartbeats."""
STALE = 30.0
"""Seconds without a heartbeat after which a writer on another host (or a hung one) is gone."""


def home_key() -> tuple[str | None, str | None]:
    """What the default home depends on, cheaply: ``$ORCHNB_HOME``, else the working directory.
    Per-home objects are looked up by this on every run (resolving paths costs ~20 µs)."""
    env = os.environ.get("ORCHNB_HOME")
    return env, None if env else os.getcwd()


def home() -> Path:
    """Where orchnb keeps its files: ``$ORCHNB_HOME`` or ``.orchnb/`` in the working directory."""
    return Path(os.environ.get("ORCHNB_HOME") or Path.cwd() / ".orchnb")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with orchnb's migrations applied.

    Raises :class:`~orchnb.OrchnbError` when the file was written by a newer orchnb.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    try:
        _check_version(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        unknown = sorted(done - {name for name, _ in MIGRATIONS})
        if unknown:
            raise _newer(path, f"it has migration(s) {', '.join(unknown)}")
        for name, sql in MIGRATIONS:
            if name not in done:
                conn.executescript(f"BEGIN; {sql} INSERT OR IGNORE INTO _migrations "
                                   f"VALUES ('{name}', julianday('now')); COMMIT;")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _warn_legacy_batches(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_version(conn: sqlite3.Connection, path: Path) -> None:
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise OrchnbError(f"{path} is not an orchnb trace store ({e}); move it away or set "
                          "ORCHNB_HOME to another folder") from None
    if version > SCHEMA_VERSION:
        raise _newer(path, f"schema version {version}")


def _newer(path: Path, what: str) -> OrchnbError:
    return OrchnbError(
        f"{path} was written by a newer orchnb ({what}; this orchnb knows schema version "
        f"{SCHEMA_VERSION}). Upgrade orchnb (pip install -U orchnb), or set ORCHNB_HOME to "
        "another folder to keep this one's traces apart.")


def _warn_legacy_batches(conn: sqlite3.Connection, path: Path) -> None:
    left = conn.execute("SELECT count(*) FROM span_log").fetchone()[0]
    if left:
        warnings.warn(f"{path}: {left} batch(es) of spans logged by an older orchnb before a "
                      "crash are in table span_log, in marshal format, which orchnb no longer "
                      "reads (unsafe); they are not in orchnb.traces()", RuntimeWarning,
                      stacklevel=3)


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
        self._runs: deque[tuple[str, str | None, str | None]] = deque()
        self._wake = threading.Event()
        self.interval = 0.02
        self.quiet = 0.05
        """Seconds without new spans after which the writer compacts the log."""
        self.max_log = 20_000
        """Spans in the log that make the writer compact even while spans keep coming."""
        self._lock = threading.Lock()
        self._closed = False
        # Spans a crashed kernel left in the log are compacted soon, not only at the next read.
        self._logged = self._conn.execute("SELECT count(*) FROM span_batches").fetchone()[0]
        self._mine: dict[int, list[tuple[Any, ...]]] = {}
        """Batches this store logged, by id: compaction takes their rows from here, so only
        batches of another process (or a crashed kernel) are read back and parsed."""
        """Spans (at least) in the log since the last compaction."""
        self._last_write = 0.0
        self._token = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._beat_at = 0.0
        self._owned: set[str] = set()
        self._heartbeat()
        self._thread = threading.Thread(target=self._loop, name="orchnb-span-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, span: Span) -> None:
        """Hand a span over for writing (cheap: the writer thread does the I/O)."""
        self._queue.append(span)

    def write_run(self, run_id: str, spec: str | None, input: str | None) -> None:
        """Keep what rebuilds a run in a new kernel (``orchnb.load_run``): its pipeline's
        ``%%orch`` YAML and its input as JSON when it is not text (written with the spans)."""
        self._runs.append((run_id, spec, input))

    def read_run(self, run_id: str) -> tuple[str | None, str | None]:
        """``(spec, input)`` kept by :meth:`write_run` for ``run_id`` (Nones when none was)."""
        self.flush()
        with self._lock:
            row = self._conn.execute("SELECT spec, input FROM runs WHERE run_id = ?",
                                     (run_id,)).fetchone()
        if row is None:
            return None, None
        return tuple(v if isinstance(v, str) else None for v in row)  # type: ignore[return-value]

    def _drain(self) -> None:
        with self._lock:
            if self._runs:
                records = []
                while self._runs:
                    run_id, spec, input = self._runs.popleft()
                    records.append((run_id, *(scrub_secrets(t) if t and needs_scrub(t) else t
                                              for t in (spec, input))))
                self._conn.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", records)
            queue = self._queue  # other threads only append: len() items are ours to take
            spans = [queue.popleft() for _ in range(len(queue))]
            if not spans:
                return
            # A run's span is handed over twice (as it starts and as it ends): when both are in
            # one batch, one row with its latest state is all there is to write.
            last = {id(s): i for i, s in enumerate(spans)}
            if len(last) < len(spans):
                spans = [s for i, s in enumerate(spans) if last[id(s)] == i]
            rows = [s.to_row() for s in spans]
            if rows:
                refresh_secrets()
                # One test over the text columns of the whole batch (the same answer as one
                # per row: the NUL separator is in no key or marker); rows only when it hits.
                texts = [f"{r[_E]}\x00{r[_I]}\x00{r[_O]}\x00{r[_R]}\x00{r[_M]}" for r in rows]
                if needs_scrub("\x00".join(texts)):
                    rows = [_scrub_row(row) for row in rows]
                cursor = self._conn.execute("INSERT INTO span_batches (rows) VALUES (?)",
                                            (_encode(rows),))
                self._mine[cursor.lastrowid] = rows
                self._own(rows)
                self._logged += len(rows)
                self._last_write = time.monotonic()

    def _heartbeat(self) -> None:
        self._beat_at = time.monotonic()
        self._conn.execute("INSERT OR REPLACE INTO writers VALUES (?, ?, ?, ?)",
                           (self._token, os.getpid(), _HOST, time.time()))

    def _own(self, rows: list[tuple[Any, ...]]) -> None:
        """Record this process as the writer of the runs that start in ``rows``."""
        new = [(row[_RUN_ID], self._token) for row in rows
               if row[_KIND] == "run" and row[_STATUS] == "running"
               and row[_RUN_ID] not in self._owned]
        if new:
            self._owned.update(r for r, _ in new)
            self._conn.executemany("INSERT OR IGNORE INTO run_writers VALUES (?, ?)", new)

    def crashed_runs(self, run_ids: list[str] | None = None) -> dict[str, str]:
        """Runs stored as ``running`` whose writing process is gone, with why: ``{run_id:
        reason}``. A writer is gone when its process no longer exists on this host, or when it
        sent no heartbeat for :data:`STALE` seconds."""
        self.flush()
        self.compact()
        sql = ("SELECT s.run_id, w.token, w.pid, w.host, w.heartbeat FROM spans s "
               "JOIN run_writers r ON r.run_id = s.run_id JOIN writers w ON w.token = r.token "
               "WHERE s.kind = 'run' AND s.status = 'running'")
        with self._lock:
            rows = self._conn.execute(sql).fetchall()
        wanted = set(run_ids) if run_ids is not None else None
        now, out = time.time(), {}
        for run_id, token, pid, host, beat in rows:
            if token == self._token or (wanted is not None and run_id not in wanted):
                continue
            age = now - (beat or 0.0)
            if host == _HOST and pid is not None and not _alive(pid):
                out[run_id] = f"its process (pid {pid}) died; last heartbeat {age:.0f}s ago"
            elif age > STALE:
                out[run_id] = f"no heartbeat from its process (pid {pid} on {host}) for {age:.0f}s"
        return out

    def compact(self) -> None:
        """Move the logged spans into the ``spans`` table (reads call this first)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                batches = self._conn.execute(
                    "SELECT id FROM span_batches ORDER BY id").fetchall()
                mine, self._mine = self._mine, {}
                latest: dict[str, tuple[Any, ...]] = {}
                dropped = 0
                for (batch,) in batches:
                    logged = mine.get(batch)
                    if logged is None:
                        logged = _decode(self._conn.execute(
                            "SELECT rows FROM span_batches WHERE id = ?", (batch,)).fetchone()[0])
                    if logged is None:
                        dropped += 1
                        continue
                    for row in logged:
                        latest[row[1]] = row  # by span_id: a span's last logged state wins
                if dropped:
                    warnings.warn(f"{self.path}: dropped {dropped} batch(es) of logged spans "
                                  "that are not valid span rows (a damaged or tampered file)",
                                  RuntimeWarning, stacklevel=2)
                # The sqlite3 module binds a None about ten times slower than a number (it looks
                # for an adapter), and most of a span's columns are None: bind the present ones.
                groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
                for row in latest.values():
                    shape = tuple(map(is_not, row, _NO_VALUES))
                    groups.setdefault(shape, []).append(tuple(compress(row, shape)))
                for shape, rows in groups.items():
                    self._conn.executemany(_insert_for(shape), rows)
                if batches:
                    self._conn.execute("DELETE FROM span_batches WHERE id <= ?",
                                       (batches[-1][0],))
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
            if time.monotonic() - self._beat_at >= HEARTBEAT:
                with self._lock:
                    self._heartbeat()

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


_HOST = socket.gethostname()


def _alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: assume alive)
    return True


# The stdlib encoder writes NaN (an unknown price) as JSON's non-standard NaN, which json.loads
# reads back; orjson (``orchnb[fast]``), ten times faster, writes null: the same to the spans
# table, where SQLite stores a NaN as NULL anyway.
_json_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False,
                                separators=(",", ":")).encode
_fast_encode: Callable[[Any], Any] | None = None


def _encode(rows: list[tuple[Any, ...]]) -> str | bytes:
    global _fast_encode
    if _fast_encode is None:  # imported on first use: `import orchnb` stays light
        try:
            import orjson
        except ImportError:
            _fast_encode = _json_encode
        else:
            _fast_encode = orjson.dumps
    try:
        return _fast_encode(rows)
    except TypeError:  # orjson: an int beyond 64 bits, a str subclass...
        return _json_encode(rows)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _decode(text: Any) -> list[tuple[Any, ...]] | None:
    """A logged batch as rows, or None when it is not a JSON list of span rows."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return None
    try:
        batch = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(batch, list):
        return None
    width = len(COLUMNS)
    rows = []
    for row in batch:
        if (row.__class__ is not list or len(row) != width or row[1].__class__ is not str
                or not _SCALARS.issuperset(map(type, row))):
            return None
        rows.append(tuple(row))
    return rows


def _scrub_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with API keys scrubbed out of its text columns (error, input, output, raw label,
    meta): one cheap substring test over all of them, the regexes only when it finds a marker."""
    if not needs_scrub(f"{row[_E]}\x00{row[_I]}\x00{row[_O]}\x00{row[_R]}\x00{row[_M]}"):
        return row
    out = list(row)
    for i in _TEXT_COLUMNS:
        out[i] = scrub_secrets(out[i])
    return tuple(out)


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
