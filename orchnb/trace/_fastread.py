"""Reads of many spans through the columnar copy (``_columnar``), checked against SQLite.

One read: hand over and compact what this process logged; in one SQLite read transaction take
the largest rowid and the count of the rows asked for (cheap, indexed), map the copy's files
onto the rowids up to it, and read from SQLite only the ranges no file covers (writing them
as files, so the next read does not). Keep each span's last row, sort by ``start`` as SQLite
does (ties by rowid), and build the DataFrame with the very conversion of the sqlite3 path.
Anything unexpected (a count that does not match, a value Arrow cannot hold) answers None:
the caller reads SQLite, the source of truth.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _columnar
from ._columnar import ROWID
from ._frame import _NUMERIC, _arrow_text, assemble
from ._span import COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ._store import SpanStore

_log = logging.getLogger("orchnb")

FILL_ROWS = 100_000
"""Rowids per file when a range missing from the copy is read from SQLite."""
MERGE_FILES = 8
"""Files past the first after which a whole-store read merges them into one."""


@dataclass
class _Read:
    """What one read asks for and gathers."""

    since: float | None
    pipeline: str | None
    names: list[str]
    top: int = 0
    tag: str = field(default_factory=lambda: f"r{os.getpid()}{os.urandom(4).hex()}")
    pieces: list[tuple[int, int, pa.Table]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    """The copy's files this read took rows from."""
    fills: list[Path] = field(default_factory=list)
    """The files this read wrote for rowids no file covered."""
    filled: bool = False

    @property
    def whole(self) -> bool:
        """Every column of every span: what a merged file must hold."""
        return self.since is None and self.pipeline is None and len(self.names) == len(COLUMNS)


def read_frame(store: SpanStore, names: Sequence[str], since: float | None = None,
               pipeline: str | None = None) -> pd.DataFrame | None:
    """The spans (columns ``names``, started at ``since`` or later, of ``pipeline``) as the
    trace DataFrame, sorted by start; None when the copy cannot answer (no pyarrow, or it
    disagrees with SQLite): then read SQLite."""
    if not _columnar.available():
        return None
    try:
        table = read_table(store, names, since, pipeline)
    except Exception as e:  # the copy is a cache: never let it fail a read SQLite can answer
        _log.warning("orchnb: the columnar copy of %s could not be read (%s: %s); reading "
                     "SQLite", store.path, type(e).__name__, e)
        return None
    if table is None:
        return None
    return to_frame(table, names)


def read_table(store: SpanStore, names: Sequence[str], since: float | None = None,
               pipeline: str | None = None) -> pa.Table | None:
    """:func:`read_frame` as an Arrow table (with the rowid column), or None."""
    store.flush()
    store.compact()
    store.columns_written()
    read = _Read(since, pipeline, list(names))
    where = _columnar.folder(store.path)
    conn = sqlite3.connect(store.path, check_same_thread=False, isolation_level=None,
                           timeout=30)
    try:
        conn.execute("BEGIN")  # one snapshot for the count, the largest rowid and the gaps
        read.top = conn.execute("SELECT max(rowid) FROM spans").fetchone()[0] or 0
        cond, params = _condition(since, pipeline)
        expected = conn.execute("SELECT count(*) FROM spans" + cond, params).fetchone()[0]
        if not _gather(conn, where, read):
            return None
        conn.execute("COMMIT")
    finally:
        conn.close()
    table = _finish(read, expected)
    if table is None:
        if read.whole:  # a filtered read only falls back: the next whole read decides
            _reset(where, store.path)
        return None
    if read.whole:
        _merge(where, read, table)
    return table


def _condition(since: float | None, pipeline: str | None) -> tuple[str, tuple[Any, ...]]:
    where, params = [], []
    if since is not None:
        where.append("start >= ?")
        params.append(since)
    if pipeline is not None:
        where.append("pipeline = ?")
        params.append(pipeline)
    return (" WHERE " + " AND ".join(where) if where else ""), tuple(params)


def _gather(conn: sqlite3.Connection, where: Path, read: _Read) -> bool:
    """Collect the pieces covering rowids ``(0, top]``: files, and SQLite for the gaps between
    them (False when SQLite's rows do not fit the copy's types)."""
    covered = 0
    for lo, hi, path in _columnar.listing(where):
        if hi <= covered or lo >= read.top:
            continue  # already covered (a merged or duplicated file), or newer than our snapshot
        if lo > covered:
            if not _fill(conn, where, covered, lo, read):
                return False
            covered = lo
        got = _columnar.read(path, lo, hi)
        if got is None:
            continue  # damaged or gone: its rowids are read from SQLite with the next gap
        table, max_start = got
        read.files.append(path)
        end = min(hi, read.top)
        if read.since is not None and max_start is not None and max_start < read.since:
            read.pieces.append((covered, end, table.slice(0, 0)))  # nothing late enough
        else:
            if lo < covered or hi > read.top:
                table = _rowids(table, covered, end)
            read.pieces.append((covered, end, table))
        covered = end
    return covered >= read.top or _fill(conn, where, covered, read.top, read)


def _rowids(table: pa.Table, lo: int, hi: int) -> pa.Table:
    import pyarrow.compute as pc

    rowid = table[ROWID]
    return table.filter(pc.and_(pc.greater(rowid, lo), pc.less_equal(rowid, hi)))


def _fill(conn: sqlite3.Connection, where: Path, lo: int, hi: int, read: _Read) -> bool:
    """Read the rowids ``(lo, hi]`` from SQLite, adding them to the copy as files."""
    read.filled = True
    sql = "SELECT rowid, * FROM spans WHERE rowid > ? AND rowid <= ?"
    for a in range(lo, hi, FILL_ROWS):
        b = min(hi, a + FILL_ROWS)
        rows = conn.execute(sql, (a, b)).fetchall()
        table = _columnar.to_table([r[1:] for r in rows], [r[0] for r in rows])
        del rows
        if table is None:
            return False
        try:
            path = _columnar.write(where, a, b, table, read.tag)
        except Exception as e:  # a read-only folder, a full disk: the read goes on
            _log.debug("orchnb: no columnar copy of rowids %d-%d (%s)", a + 1, b, e)
        else:
            read.fills.append(path)
            mapped = _columnar.read(path, a, b)  # the file's pages, not this process's memory
            table = mapped[0] if mapped is not None else table
        read.pieces.append((a, b, table))
    return True


def _finish(read: _Read, expected: int) -> pa.Table | None:
    """The pieces as one table: filtered, each span's last row, sorted as SQLite sorts."""
    import pyarrow as pa

    keep = list(dict.fromkeys([ROWID, "span_id", "start", *read.names]))
    tables = [_filter(t.select(keep), read) for _, _, t in read.pieces]
    if sum(t.num_rows for t in tables) != expected:  # spans written more than once
        tables = last_rows(tables)
    sch = _columnar.schema()
    table = (pa.concat_tables(tables) if tables
             else pa.schema([sch.field(c) for c in keep]).empty_table())
    if table.num_rows != expected:
        return None
    return _sorted(table)


def last_rows(tables: list[pa.Table]) -> list[pa.Table]:
    """``tables`` with only each span's last row (its highest rowid), copying only the tables
    that lose a row. A table holds a span once (a compaction's, a gap's, a merged file's), so
    only spans found outside the largest table can be there twice: a run span written as it
    starts and again as it ends (the superseded row is mostly in a small, recent file)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(tables) < 2:
        return tables
    big = max(range(len(tables)), key=lambda i: tables[i].num_rows)
    ids = pa.chunked_array([t["span_id"] for i, t in enumerate(tables) if i != big],
                           type=pa.large_string()).combine_chunks()
    involved = [pc.is_in(t["span_id"], value_set=ids) for t in tables]
    some = pa.concat_tables([t.select(["span_id", ROWID]).filter(m)
                             for t, m in zip(tables, involved)])
    last = some.group_by("span_id", use_threads=False).aggregate([(ROWID, "max")])
    out = []
    for t, m in zip(tables, involved):
        drop = pc.and_(m, pc.invert(pc.is_in(t[ROWID], value_set=last[f"{ROWID}_max"])))
        out.append(t.filter(pc.invert(drop)) if pc.any(drop).as_py() else t)
    return out


def _filter(table: pa.Table, read: _Read) -> pa.Table:
    import pyarrow.compute as pc

    mask = None
    if read.since is not None:
        mask = pc.greater_equal(table["start"], read.since)
    if read.pipeline is not None:
        same = pc.equal(table["pipeline"], read.pipeline)
        mask = same if mask is None else pc.and_(mask, same)
    return table if mask is None else table.filter(mask)


def _sorted(table: pa.Table) -> pa.Table:
    """``table`` by start then rowid, NULL starts first (SQLite's ``ORDER BY start`` over its
    index); a copy only when it is not in that order already (a merged file is)."""
    import numpy as np
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return table
    start = table["start"].to_numpy()
    step = np.diff(start)
    if not np.isnan(step).any() and (step >= 0).all():
        ties = np.flatnonzero(step == 0)
        if not len(ties) or (np.diff(table[ROWID].to_numpy())[ties] > 0).all():
            return table
    try:  # null placement per key (pyarrow 25 deprecates it per sort)
        order = pc.sort_indices(table, sort_keys=[("start", "ascending", "at_start"),
                                                  (ROWID, "ascending", "at_start")])
    except (TypeError, ValueError):  # an older pyarrow
        order = pc.sort_indices(table, sort_keys=[("start", "ascending"), (ROWID, "ascending")],
                                null_placement="at_start")
    return table.take(order)


def _merge(where: Path, read: _Read, table: pa.Table) -> None:
    """Rewrite the copy as fewer files when it has many, or rows read from SQLite, or
    superseded rows: everything as one file when the files after the first hold as many rows
    as it, else those files as one."""
    pieces = read.pieces
    if len(pieces) < 2 or not (read.filled or len(pieces) > MERGE_FILES + 1):
        return
    tail = sum(t.num_rows for _, _, t in pieces[1:])
    try:
        if read.filled or tail >= pieces[0][2].num_rows:
            merged = table.select(_columnar.schema().names)
            new = _columnar.write(where, pieces[0][0], read.top, merged, read.tag)
            old = read.files + read.fills
        else:
            import pyarrow as pa

            rest = pa.concat_tables(last_rows([t for _, _, t in pieces[1:]]))
            new = _columnar.write(where, pieces[1][0], read.top, rest, read.tag)
            old = read.files[1:]
    except Exception as e:
        _log.debug("orchnb: the columnar copy was not merged (%s)", e)
        return
    for path in old:
        if path != new:
            # Open elsewhere (Windows): covered by the merged file, skipped by reads.
            with contextlib.suppress(OSError):
                path.unlink()


def _reset(where: Path, store_path: Path) -> None:
    """Drop a copy that disagrees with SQLite (rowids renumbered by ``VACUUM``): the next
    read rebuilds it."""
    _log.warning("orchnb: the columnar copy of %s disagrees with it; it is rebuilt", store_path)
    for _, _, path in _columnar.listing(where):
        with contextlib.suppress(OSError):
            path.unlink()


def to_frame(table: pa.Table, names: Sequence[str]) -> pd.DataFrame:
    """The trace DataFrame of ``table``'s columns ``names`` (as the sqlite3 path builds it)."""
    if not table.num_rows:
        return assemble([], None, names)
    pieces: list[list[Any]] = []
    for name in names:
        column = table[name]
        if name in _NUMERIC:
            pieces.append([column.to_numpy()])
        else:
            pieces.append(list(column.chunks))
    return assemble(pieces, _arrow_text(), names)
