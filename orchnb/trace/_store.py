"""The SQLite span store: every span is written as it ends, so a crashed kernel loses nothing done.

Writes go through a background thread that batches them (the engine's hot path only appends to
a deque); ``flush()`` waits until everything handed over is on disk. Each batch is first
appended to a log table as one row of JSON (a few µs a span, so persisting barely slows a run);
the writer moves logged spans into the indexed ``spans`` table once the run goes quiet (or the
log grows long), and every read does so first. Any number of processes share one store: batch
ids never repeat (migration 009), so a process compacts its own batches from memory and every
other process's from the log.

The writer survives what it is given: text UTF-8 cannot encode is replaced (``_rows``), and a
failed write (a locked or full disk) puts its spans back in the queue to be retried. Should the
thread die anyway, the next run says so and starts a new one, which finds the queue intact.

The schema lives in ``_migrations``, the row encoding in ``_rows``, the reads in ``_readers``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import sys
import threading
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import compress, count, repeat
from operator import attrgetter, call, eq, itemgetter
from pathlib import Path

from ..models import needs_scrub, refresh_secrets, scrub_secrets
from . import _columnar
from ._home import PerFile, home, home_key
from ._migrations import MIGRATIONS, SCHEMA_VERSION, connect
from ._readers import StoreReaders
from ._rows import KIND, RUN_ID, SPAN_ID, STATUS, Row, decode, encode, insert_spans, to_rows
from ._span import Span, safe_text

__all__ = ["HEARTBEAT", "MIGRATIONS", "SCHEMA_VERSION", "STALE", "PerFile", "SpanStore",
           "connect", "get_store", "home", "home_key"]

_log = logging.getLogger("orchnb")

HEARTBEAT = 1.0
"""Seconds between a writer's heartbeats."""
STALE = 30.0
"""Seconds without a heartbeat after which a writer on another host is gone."""
LOCAL_STALE = 600.0
"""Seconds without a heartbeat after which a writer whose process still exists on this host is
taken for gone (hung, or its pid reused): a busy live process is never marked crashed sooner."""


class SpanStore(StoreReaders):
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
        self._idle = False
        """The writer sleeps until woken (or the next heartbeat): a store nobody writes to
        costs no wake-ups every 20 ms (a process with many homes had hundreds)."""
        self.quiet = 0.05
        """Seconds without new spans after which the writer compacts the log."""
        self.max_log = 20_000
        """Spans in the log that make the writer compact even while spans keep coming."""
        self._lock = threading.Lock()
        self._closed = False
        # Spans a crashed kernel left in the log are compacted soon, not only at the next read.
        self._logged = self._conn.execute("SELECT count(*) FROM span_batches").fetchone()[0]
        """Spans (at least) in the log since the last compaction."""
        self._mine: dict[int, list[Row]] = {}
        """Batches this store logged, by id: compaction takes their rows from here, so only
        batches of another process (or a crashed kernel) are read back and parsed. Safe only
        because ids never repeat: an id here is this process's batch, or already compacted."""
        self._last_write = 0.0
        self._token = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._beat_at = 0.0
        self._owned: set[str] = set()
        self._failures = 0
        self._death: str | None = None
        self._restart = threading.Lock()
        self.columnar = _columnar.available()
        """Whether compactions also write the columnar copy that reads of many spans use
        (``_columnar``; needs pyarrow)."""
        self._columns: ThreadPoolExecutor | None = None
        """The thread that writes the columnar copy: never the writer's, whose only job is to
        get spans to disk (importing pyarrow there once held spans back for seconds)."""
        self._columns_last: Future[None] | None = None
        self._heartbeat()
        self._thread = self._start_writer()
        atexit.register(self.close)

    def _start_writer(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="orchnb-span-writer", daemon=True)
        thread.start()
        return thread

    def write(self, span: Span) -> None:
        """Hand a span over for writing (cheap: the writer thread does the I/O)."""
        self._queue.append(span)
        if self._idle:  # only the first span after a quiet spell wakes the writer
            self._idle = False
            self._wake.set()

    def write_run(self, run_id: str, spec: str | None, input: str | None) -> None:
        """Keep what rebuilds a run in a new kernel (``orchnb.load_run``): its pipeline's
        ``%%orch`` YAML and its input as JSON when it is not text (written with the spans)."""
        self._runs.append((run_id, spec, input))
        if self._idle:
            self._idle = False
            self._wake.set()

    def read_run(self, run_id: str) -> tuple[str | None, str | None]:
        """``(spec, input)`` kept by :meth:`write_run` for ``run_id`` (Nones when none was)."""
        self.flush()
        with self._lock:
            row = self._conn.execute("SELECT spec, input FROM runs WHERE run_id = ?",
                                     (run_id,)).fetchone()
        if row is None:
            return None, None
        return tuple(v if isinstance(v, str) else None for v in row)  # type: ignore[return-value]

    def ensure_writer(self) -> None:
        """Start a new writer thread if the last one died, saying so loudly (a warning and an
        error in the ``orchnb`` log): the spans it had not written are still queued, and the
        new writer writes them. Cheap (called as every run starts)."""
        if self._thread.is_alive() or self._closed:
            return
        with self._restart:
            if self._thread.is_alive() or self._closed:
                return
            message = (f"orchnb: the span writer of {self.path} had stopped "
                       f"({self._death or 'no reason recorded'}); a new one takes over, and the "
                       "spans waiting to be written are kept")
            self._death = None
            self._thread = self._start_writer()
        _log.error(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    def _drain(self) -> None:
        with self._lock:
            if self._runs:
                self._write_runs()
            queue = self._queue  # other threads only append: len() items are ours to take
            spans = list(map(call, repeat(queue.popleft, len(queue))))  # (a loop in C)
            if not spans:
                return
            try:
                self._log_batch(spans)
            except BaseException:
                # Nothing handed over is lost: back to the front of the queue, retried later.
                queue.extendleft(reversed(spans))
                raise

    def _write_runs(self) -> None:
        records = [self._runs.popleft() for _ in range(len(self._runs))]
        try:
            self._conn.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", [
                (safe_text(run_id), *(safe_text(scrub_secrets(t) if needs_scrub(t) else t)
                                      if t else t for t in (spec, input)))
                for run_id, spec, input in records])
        except BaseException:
            self._runs.extendleft(reversed(records))
            raise

    def _log_batch(self, spans: list[Span]) -> None:
        """Append the spans to the log as one batch (one JSON row)."""
        _once(spans)
        refresh_secrets()
        batch, rows = encode(to_rows(spans))
        cursor = self._conn.execute("INSERT INTO span_batches (rows) VALUES (?)", (batch,))
        self._mine[cursor.lastrowid] = rows
        self._own(rows)
        self._logged += len(rows)
        self._last_write = time.monotonic()

    def _heartbeat(self) -> None:
        self._beat_at = time.monotonic()
        self._conn.execute("INSERT OR REPLACE INTO writers VALUES (?, ?, ?, ?)",
                           (self._token, os.getpid(), _HOST, time.time()))

    def _own(self, rows: list[Row]) -> None:
        """Record this process as the writer of the runs that start in ``rows``."""
        runs = compress(rows, map(eq, map(_kind, rows), repeat("run")))  # (a loop in C)
        new = [(row[RUN_ID], self._token) for row in runs
               if row[STATUS] == "running" and row[RUN_ID] not in self._owned]
        if new:
            self._conn.executemany("INSERT OR IGNORE INTO run_writers VALUES (?, ?)", new)
            self._owned.update(r for r, _ in new)

    def crashed_runs(self, run_ids: list[str] | None = None) -> dict[str, str]:
        """Runs stored as ``running`` whose writing process is gone, with why: ``{run_id:
        reason}``. A writer is gone when its process no longer exists on this host, or when it
        sent no heartbeat for :data:`STALE` seconds (:data:`LOCAL_STALE` for a process that
        still exists on this host: a busy one is late, not dead)."""
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
            local = host == _HOST and pid is not None
            if local and not _alive(pid):
                out[run_id] = f"its process (pid {pid}) died; last heartbeat {age:.0f}s ago"
            elif age > (LOCAL_STALE if local else STALE):
                out[run_id] = f"no heartbeat from its process (pid {pid} on {host}) for {age:.0f}s"
        return out

    def compact(self) -> None:
        """Move the logged spans into the ``spans`` table (reads call this first)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            mine, self._mine = self._mine, {}
            try:
                batches = self._conn.execute(
                    "SELECT id FROM span_batches ORDER BY id").fetchall()
                latest: dict[str, Row] = {}
                dropped = 0
                for (batch,) in batches:
                    logged = mine.get(batch)
                    if logged is None:
                        logged = decode(self._conn.execute(
                            "SELECT rows FROM span_batches WHERE id = ?", (batch,)).fetchone()[0])
                    if logged is None:
                        dropped += 1
                        continue
                    latest.update(zip(map(_span_id, logged), logged))  # the last state wins
                if dropped:
                    warnings.warn(f"{self.path}: dropped {dropped} batch(es) of logged spans "
                                  "that are not valid span rows (a damaged or tampered file)",
                                  RuntimeWarning, stacklevel=2)
                lo = self._top()
                inserted = insert_spans(self._conn, list(latest.values()))
                hi = self._top() if inserted else lo
                if batches:
                    self._conn.execute("DELETE FROM span_batches WHERE id <= ?",
                                       (batches[-1][0],))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._mine = mine  # still logged: compacted (from memory) next time
                raise
            self._logged = 0
        if inserted and self.columnar and hi - lo == len(inserted):
            # Otherwise rowids are not one after another in insertion order: readers fill in.
            self._submit_columns(lo, hi, inserted)

    def _submit_columns(self, lo: int, hi: int, rows: list[Row]) -> None:
        if self._columns is None:
            self._columns = ThreadPoolExecutor(1, thread_name_prefix="orchnb-span-columns")
        try:
            self._columns_last = self._columns.submit(self._write_columns, lo, hi, rows)
        except RuntimeError:  # at exit, thread pools are shut down before close() runs
            if "pyarrow" in sys.modules:  # cheap now; else readers fill the gap later
                self._write_columns(lo, hi, rows)

    def columns_written(self, timeout: float = 30.0) -> None:
        """Wait until the columnar copy has every compaction this process committed."""
        last = self._columns_last
        if last is not None:
            # _write_columns never raises; a timeout leaves a gap, which readers fill.
            with contextlib.suppress(Exception):
                last.result(timeout)

    def _top(self) -> int:
        return self._conn.execute("SELECT max(rowid) FROM spans").fetchone()[0] or 0

    def _write_columns(self, lo: int, hi: int, rows: list[Row]) -> None:
        """Add the rows a compaction committed to the columnar copy. Never fails the writer:
        without the file, readers take these rows from SQLite (and write the file then)."""
        try:
            table = _columnar.to_table(rows, range(lo + 1, hi + 1))
            if table is not None:
                _columnar.write(_columnar.folder(self.path), lo, hi, table,
                                self._token.replace("-", ""))
        except Exception as e:
            _log.debug("orchnb: no columnar copy of spans %d-%d of %s (%s: %s)", lo + 1, hi,
                       self.path, type(e).__name__, e)

    def _loop(self) -> None:
        # Wake every few milliseconds rather than per span: waking the writer for each span
        # costs the run's thread more (GIL hand-offs) than the writes themselves.
        try:
            while not self._closed:
                self._wake.wait(self._timeout())
                self._wake.clear()
                self._idle = False
                try:
                    self._tick()
                except Exception as e:  # the writer survives; what it held is queued again
                    self._failed(e)
                else:
                    if self._failures:
                        _log.warning("orchnb: the span writer of %s writes again", self.path)
                        self._failures = 0
        except BaseException as e:  # the thread ends: ensure_writer() starts another
            self._death = f"{type(e).__name__}: {e}"
            _log.error("orchnb: the span writer of %s stopped (%s)", self.path, self._death,
                       exc_info=True)

    def _timeout(self) -> float:
        """How long the writer sleeps: 20 ms while there is work, else until a span arrives
        (write() wakes it) or the next heartbeat is due."""
        if self._failures:
            return min(1.0, self.interval * 2 ** self._failures)
        if self._queue or self._runs or self._logged:
            return self.interval
        self._idle = True
        # A span appended before _idle was set is seen here; one appended after sees _idle.
        if self._queue or self._runs:
            self._idle = False
            return self.interval
        return max(self.interval, HEARTBEAT - (time.monotonic() - self._beat_at))

    def _tick(self) -> None:
        if self._queue or self._runs:
            self._drain()
        if self._logged and (self._logged >= self.max_log
                             or time.monotonic() - self._last_write >= self.quiet):
            self.compact()
        if time.monotonic() - self._beat_at >= HEARTBEAT:
            with self._lock:
                self._heartbeat()

    def _failed(self, e: Exception) -> None:
        self._failures += 1
        if self._failures == 1 or self._failures % 100 == 0:
            _log.warning("orchnb: the span writer of %s failed (%s: %s; %d time(s) in a row); "
                         "its spans stay queued and are retried", self.path, type(e).__name__,
                         e, self._failures)

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every span handed over so far is committed (to the log, at least)."""
        self.ensure_writer()
        self._drain()

    def close(self) -> None:
        """Flush and stop the writer (registered at interpreter exit)."""
        if self._closed:
            return
        self._drain()
        self.compact()
        self.columns_written()
        self._closed = True
        self._wake.set()
        if self._columns is not None:
            self._columns.shutdown(wait=False)


def close_stores(folder: Path | str) -> int:
    """Flush, stop and forget the span stores of homes under ``folder``; how many there were.
    For a process done with a home (a test, a kernel that moved ``ORCHNB_HOME``): each store
    keeps a writer thread while it is open. A later read of that home opens it again.

    >>> close_stores(tempfile.mkdtemp())   # doctest: +SKIP
    0
    """
    stores = _STORES.forget(Path(folder))
    for store in stores:
        store.close()
    return len(stores)


def _once(spans: list[Span]) -> None:
    """Drop from ``spans`` the first of a run span handed over twice (as it started and as it
    ended): one row with its latest state is all there is to write. Only run spans are looked
    at (found without a Python loop), so a batch of many spans costs little."""
    at = list(compress(count(), map(eq, map(_span_kind, spans), repeat("run"))))
    if len(at) < 2:
        return
    last = {id(spans[i]): i for i in at}
    if len(last) < len(at):
        for i in reversed(at):
            if last[id(spans[i])] != i:
                del spans[i]


_HOST = socket.gethostname()
_kind, _span_id = itemgetter(KIND), itemgetter(SPAN_ID)
_span_kind = attrgetter("kind")


def _alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: assume alive)
    return True


_STORES: PerFile[SpanStore] = PerFile(SpanStore, "traces.sqlite")


def get_store(path: Path | None = None) -> SpanStore:
    """The process-wide store for ``path`` (default: ``home()/traces.sqlite``)."""
    return _STORES.get(path)
