"""Reading the span store: rows through sqlite3, whole or in chunks (never through a second
SQLite library such as ADBC's: two in one process break each other's locks on the file).

Every read first hands over and compacts what this process logged (``flush`` + ``compact``),
so it sees every span ended before it; reads of many rows use connections of their own, so
the writer goes on meanwhile (WAL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._migrations import TYPES
from ._span import COLUMNS

Row = tuple[Any, ...]


class StoreReaders:
    """The read side of :class:`~orchnb.trace.SpanStore` (which provides ``path``, ``_conn``,
    ``_lock``, ``flush`` and ``compact``)."""

    path: Path
    _conn: sqlite3.Connection

    def flush(self, timeout: float = 30.0) -> None:  # pragma: no cover - the store's
        raise NotImplementedError

    def compact(self) -> None:  # pragma: no cover - the store's
        raise NotImplementedError

    def read_rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[Row]:
        """Raw rows in COLUMNS order (``where`` is an SQL condition with ? placeholders)."""
        self.flush()
        self.compact()
        return self._conn.execute(_select(where), params).fetchall()

    def iter_rows(self, where: str = "", params: tuple[Any, ...] = (),
                  size: int = 50_000, names: Sequence[str] | None = None
                  ) -> Iterator[list[Row]]:
        """``read_rows`` in chunks of ``size`` rows, read on a connection of their own (WAL lets
        the writer go on meanwhile), so a million rows never sit in memory at once; only the
        columns ``names`` when given."""
        self.flush()
        self.compact()
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               timeout=30)
        try:
            cursor = conn.execute(_select(where, names), params)
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            conn.close()


def _select(where: str, names: Sequence[str] | None = None) -> str:
    what = ", ".join(f'"{c}"' for c in names) if names else "*"
    return f"SELECT {what} FROM spans {('WHERE ' + where) if where else ''} ORDER BY start"


# ADBC's SQLite driver types each column by the values in its first rows (1,024), not by the
# declared type: a column NULL there becomes INT64 and a REAL further down fails the whole read
# (router ``confidence`` after a run of chains). The fast read therefore starts with one row of
# typed placeholders (start = -inf sorts it first; real starts are finite) and drops it.
_PLACEHOLDER = {"REAL": "0.0", "INTEGER": "0", "TEXT": "''"}
_TYPED_ROW = "SELECT " + ", ".join(
    ("-9e999" if c == "start" else _PLACEHOLDER[TYPES.get(c, "TEXT")]) + f' AS "{c}"'
    for c in COLUMNS)
