"""A columnar copy of the span store beside it (Arrow IPC files), for reads of many spans.

SQLite stays the source of truth; the copy only ever holds facts about it. Every row of the
``spans`` table has a rowid, and ``INSERT OR REPLACE`` gives a span written again (``running``
then ``ok``) a new rowid above every other (nothing deletes spans, so rowids never repeat). A
file ``<lo>-<hi>-<tag>.arrow`` in ``traces.sqlite.columns/`` holds the rows that had the
rowids in ``(lo, hi]`` as they were inserted, each with its rowid: the writer thread writes one
after each compaction *commits* (so a rolled-back compaction leaves no file), to a temporary
name renamed into place (so a half-written file never has a name a reader reads). A span's
row with the highest rowid is its current one, so a reader takes the files, reads from SQLite
only the rowid ranges no file covers (a process without pyarrow, a crash between commit and
rename, spans inserted by other means) and keeps the last row of each span: the same rows as
SQLite's, checked against its ``count(*)``. ``VACUUM`` may renumber rowids: the count check
then fails and the copy is rebuilt.

Files are uncompressed Arrow IPC, read memory-mapped (no copy until pandas needs one).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._migrations import TYPES
from ._span import COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

ROWID = "_rowid"
"""The column holding each row's SQLite rowid."""
_NAME = re.compile(r"^(\d{20})-(\d{20})-([0-9A-Za-z]+)\.arrow$")
_STALE_TMP = 3600.0
"""Seconds after which a temporary file is a crashed writer's leftover, and is removed."""

_available: bool | None = None


def available() -> bool:
    """Whether pyarrow is installed (the ``fast`` extra); without it, reads use sqlite3."""
    global _available
    if _available is None:
        try:
            _available = find_spec("pyarrow") is not None
        except (ImportError, ValueError):  # sys.modules["pyarrow"] = None: import fails
            _available = False
    return _available


def folder(store_path: Path) -> Path:
    """The folder of the columnar copy of the store at ``store_path``."""
    return store_path.with_name(store_path.name + ".columns")


def schema() -> pa.Schema:
    """The files' schema: the rowid, then every span column (numbers as float64, text as
    large_string, the types ``chunks_to_frame`` builds from)."""
    import pyarrow as pa

    return pa.schema([pa.field(ROWID, pa.int64())] + [
        pa.field(c, pa.float64() if c in TYPES else pa.large_string()) for c in COLUMNS])


def to_table(rows: Sequence[Sequence[Any]], rowids: Any) -> pa.Table | None:
    """``rows`` (in ``COLUMNS`` order) with their rowids as a table of :func:`schema`, or None
    when a value does not fit its column's type (text in a number column, from a tampered
    batch): those rows are then read from SQLite."""
    import pyarrow as pa

    sch = schema()
    columns = list(zip(*rows)) if rows else [() for _ in COLUMNS]
    try:
        arrays = [pa.array(rowids, pa.int64())] + [
            pa.array(col, field.type) for col, field in zip(columns, list(sch)[1:])]
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError, OverflowError):
        return None
    return pa.Table.from_arrays(arrays, schema=sch)


def write(where: Path, lo: int, hi: int, table: pa.Table, tag: str) -> Path:
    """Write ``table`` (rows with rowids in ``(lo, hi]``) as a file of the copy, atomically."""
    import pyarrow as pa
    import pyarrow.compute as pc

    where.mkdir(parents=True, exist_ok=True)
    name = f"{lo:020d}-{hi:020d}-{tag}.arrow"
    tmp = where / f"{name}.{os.getpid()}.tmp"
    span = pc.min_max(table["start"]).as_py() if table.num_rows else {}
    meta = {b"min_start": repr(span.get("min")).encode(),
            b"max_start": repr(span.get("max")).encode()}
    try:
        with (pa.OSFile(str(tmp), "wb") as sink,
              pa.ipc.new_file(sink, table.schema.with_metadata(meta)) as writer):
            writer.write_table(table, max_chunksize=1 << 20)
        os.replace(tmp, where / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return where / name


def listing(where: Path) -> list[tuple[int, int, Path]]:
    """The copy's complete files as ``(lo, hi, path)``, by ``lo`` then widest first; removes
    temporary files a crashed writer left long ago."""
    try:
        entries = list(os.scandir(where))
    except FileNotFoundError:
        return []
    out, now = [], time.time()
    for entry in entries:
        m = _NAME.match(entry.name)
        if m:
            out.append((int(m[1]), int(m[2]), Path(entry.path)))
        elif entry.name.endswith(".tmp"):
            try:
                if now - entry.stat().st_mtime > _STALE_TMP:
                    os.unlink(entry.path)
            except OSError:
                pass
    out.sort(key=lambda f: (f[0], -f[1]))
    return out


def read(path: Path, lo: int, hi: int) -> tuple[pa.Table, float | None] | None:
    """A file's rows and its largest ``start``, or None when it is not a valid file of the
    copy (damaged, truncated, another schema, rowids outside its name's range, gone)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        if not reader.schema.equals(schema()):
            return None
        table = reader.read_all()
        table.validate()
        if table.num_rows:
            bounds = pc.min_max(table[ROWID]).as_py()
            if bounds["min"] <= lo or bounds["max"] > hi:
                return None
        meta = reader.schema.metadata or {}
        top = meta.get(b"max_start", b"None").decode()
        return table, (float(top) if top not in ("None", "nan") else None)
    except (OSError, pa.ArrowException, ValueError):
        return None
