"""Reading the span store: rows through sqlite3 (whole or in chunks), or Arrow through ADBC.

Every read first hands over and compacts what this process logged (``flush`` + ``compact``),
so it sees every span ended before it; reads of many rows use connections of their own, so
the writer goes on meanwhile (WAL).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from itertools import pairwise
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
                  size: int = 50_000) -> Iterator[list[Row]]:
        """``read_rows`` in chunks of ``size`` rows, read on a connection of their own (WAL lets
        the writer go on meanwhile), so a million rows never sit in memory at once."""
        self.flush()
        self.compact()
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               timeout=30)
        try:
            cursor = conn.execute(_select(where), params)
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
    ("-9e999" if c == "start" else _PLACEHOLDER[TYPES.get(c, "TEXT")]) + f' AS "{c}"'
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
