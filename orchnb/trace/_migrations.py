"""The span store's schema: named, idempotent migrations, applied once per database.

``PRAGMA user_version`` records how many were applied, and a store written by a newer orchnb
(more migrations than this one knows) is refused rather than misread. A migration's SQL never
changes once released: a change to the schema is a new migration at the end of the list.
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

from ..exceptions import OrchnbError
from ._span import COLUMNS

TYPES = {
    "start": "REAL", "end": "REAL", "latency_ms": "REAL", "cost_usd": "REAL", "saved_usd": "REAL",
    "confidence": "REAL", "input_tokens": "INTEGER", "output_tokens": "INTEGER",
    "cached_tokens": "INTEGER", "iteration": "INTEGER", "item": "INTEGER", "attempt": "INTEGER",
    "priced": "INTEGER", "cached": "INTEGER", "simulated": "INTEGER", "ttft_ms": "REAL",
    "replayed": "INTEGER", "usage_estimated": "INTEGER",
    "cache_write_tokens": "INTEGER", "cache_write_1h_tokens": "INTEGER", "batch": "INTEGER",
}
"""SQLite type of each numeric span column (the others are TEXT)."""
# Columns added by later migrations are not in the first one (its SQL must never change).
_LATER = {"ttft_ms", "replayed", "forked_from", "worker", "usage_estimated",
          "cache_write_tokens", "cache_write_1h_tokens", "batch", "service_tier"}

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_spans",
        "CREATE TABLE IF NOT EXISTS spans ("
        + ", ".join(
            f'"{c}" {TYPES.get(c, "TEXT")}' + (" PRIMARY KEY" if c == "span_id" else "")
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
    (
        "009_batch_ids_never_reused",
        # Without AUTOINCREMENT, SQLite gave a batch the id of one that compaction had deleted,
        # and a process that remembered that id as one of its own batches compacted its copy
        # instead of the other process's spans (10% of spans lost with four writers). The
        # table is rebuilt with ids that never repeat, keeping the batches logged so far.
        "CREATE TABLE span_batches_009 (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "rows TEXT NOT NULL);"
        "INSERT INTO span_batches_009 (id, rows) SELECT id, rows FROM span_batches;"
        "DROP TABLE span_batches;"
        "ALTER TABLE span_batches_009 RENAME TO span_batches;",
    ),
    (
        "010_cost_classes",
        # Every token class priced by its own rate (issue 27): cache writes (5 min / 1 h), batch
        # calls and service tiers are columns, so charts can split cost by them.
        'ALTER TABLE spans ADD COLUMN "cache_write_tokens" INTEGER;'
        'ALTER TABLE spans ADD COLUMN "cache_write_1h_tokens" INTEGER;'
        'ALTER TABLE spans ADD COLUMN "batch" INTEGER;'
        'ALTER TABLE spans ADD COLUMN "service_tier" TEXT;',
    ),
    (
        "011_batches",
        # Provider batches submitted in batch mode (issue 27), so a restarted kernel or a re-run
        # of the same cell polls the batch it already paid for instead of submitting again:
        # ``keys`` are the requests' content addresses (JSON list, custom id = position),
        # ``failed`` the custom ids that came back without an answer.
        "CREATE TABLE IF NOT EXISTS provider_batches (batch_id TEXT PRIMARY KEY, "
        "provider TEXT NOT NULL, model TEXT NOT NULL, url TEXT, run_id TEXT, keys TEXT NOT NULL, "
        "status TEXT NOT NULL, failed TEXT, created REAL, updated REAL);"
        "CREATE INDEX IF NOT EXISTS provider_batches_model ON provider_batches(provider, model);",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)
"""The store schema this orchnb writes (``PRAGMA user_version``); newer stores are refused."""


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
        if _pending(conn, path):
            _migrate(conn, path)
        _warn_legacy_batches(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _pending(conn: sqlite3.Connection, path: Path) -> list[tuple[str, str]]:
    """The migrations not applied yet (refusing a store with migrations this orchnb lacks)."""
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    unknown = sorted(done - {name for name, _ in MIGRATIONS})
    if unknown:
        raise _newer(path, f"it has migration(s) {', '.join(unknown)}")
    return [(name, sql) for name, sql in MIGRATIONS if name not in done]


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the pending migrations in one transaction holding the write lock: processes that
    open a new store at once apply each migration exactly once (the second one finds it done)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _check_version(conn, path)
        for name, sql in _pending(conn, path):
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations VALUES (?, julianday('now'))", (name,))
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(sql: str) -> list[str]:
    """``sql`` cut into its statements (``executescript`` would commit the open transaction)."""
    out, buf = [], ""
    for part in sql.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" ;\n"):
                out.append(buf)
            buf = ""
    return out


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
