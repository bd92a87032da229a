"""The memory file: one SQLite database under ORCHNB_HOME shared by every kernel (WAL mode, a
busy timeout), with an FTS5 index for keyword recall and a table of chat turns.

Each operation opens its own short connection: memories are small and rarely written, and a
connection per call is what lets several kernels and threads use the same file safely.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..trace import home

FILE = "memory.sqlite"

# Named, idempotent migrations (like the trace store): applied in order, recorded by name.
_MIGRATIONS: list[tuple[str, str]] = [
    ("001_memories", """
        CREATE TABLE IF NOT EXISTS memories (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            text TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            created REAL NOT NULL,
            embedder TEXT,
            vector BLOB
        );
        CREATE INDEX IF NOT EXISTS memories_name ON memories(name);
        CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
            text, content='memories', content_rowid='id', tokenize='porter unicode61');
        CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
    """),
    ("002_chat_turns", """
        CREATE TABLE IF NOT EXISTS chat_turns (
            id INTEGER PRIMARY KEY,
            pipeline TEXT NOT NULL,
            thread TEXT NOT NULL,
            role TEXT NOT NULL,
            text TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            created REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS chat_turns_thread ON chat_turns(pipeline, thread, id);
    """),
]

_ready: set[Path] = set()


def memory_path() -> Path:
    """Where memories and chat threads live: ``memory.sqlite`` in ORCHNB_HOME."""
    return home() / FILE


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A short-lived connection (committed on success) with the migrations applied."""
    path = path or memory_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        if path not in _ready:
            _migrate(conn)
            _ready.add(path)
        conn.execute("BEGIN")
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS memory_migrations (name TEXT PRIMARY KEY)")
    done = {r[0] for r in conn.execute("SELECT name FROM memory_migrations")}
    for name, sql in _MIGRATIONS:
        if name not in done:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check under the write lock: another kernel may have just migrated.
                if not conn.execute("SELECT 1 FROM memory_migrations WHERE name = ?",
                                    (name,)).fetchone():
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO memory_migrations VALUES (?)", (name,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


def _statements(sql: str) -> list[str]:
    # Triggers contain ';' inside BEGIN ... END: split on statement boundaries only.
    out, buf = [], ""
    for line in sql.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out
