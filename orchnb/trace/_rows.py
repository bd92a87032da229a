"""Span rows as the store writes them: logged batches (JSON), key scrubbing, safe values.

Anything in a row may come from the wire or a model: text that UTF-8 cannot encode (a lone
surrogate), a NUL, an integer beyond SQLite's 64 bits, an object that is not JSON. The writer
must never fail on it, so what cannot be stored as it is becomes the nearest thing that can
(U+FFFD for a surrogate, a float or text for the rest); what the store reads back is only ever
parsed as JSON (never unmarshalled or unpickled), so a tampered file cannot run code.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from itertools import chain, compress, count, repeat
from operator import is_not, itemgetter
from typing import Any

from ..models import needs_scrub, scrub_secrets
from ._span import COLUMNS, MAX_TEXT, Span, safe_text

Row = tuple[Any, ...]

_TEXT_COLUMNS = _E, _I, _O, _R, _M = tuple(
    COLUMNS.index(c) for c in ("error", "input", "output", "raw_label", "meta"))
RUN_ID, SPAN_ID, KIND, STATUS = (COLUMNS.index(c) for c in ("run_id", "span_id", "kind",
                                                             "status"))
_META = COLUMNS.index("meta")
_texts = itemgetter(*_TEXT_COLUMNS)
_TEXT_OF = tuple(map(itemgetter, _TEXT_COLUMNS))
_SCALARS = frozenset({str, int, float, bool, type(None)})
_INT64 = 2**63


def to_rows(spans: list[Span]) -> list[Row]:
    """The spans as rows in ``COLUMNS`` order (flags as 0/1, ``meta`` as JSON text), scrubbed
    of API keys (one substring test over the whole batch's text; the regexes only for rows
    where it hits)."""
    try:
        rows = list(map(_row, spans))  # one generated function a span, called from C
    except Exception:  # a value a flag column cannot hold (+v fails): span by span
        rows = list(map(_row_slowly, spans))
    # Most spans have no meta: the rows that do are found without a Python loop.
    for i in list(compress(count(), map(is_not, map(_meta_of, rows), repeat(None)))):
        meta = rows[i][_META]
        if not isinstance(meta, str):
            rows[i] = (*rows[i][:_META], _meta_text(meta), *rows[i][_META + 1:])
    return scrub_rows(rows) if _needs_scrub(rows) else rows


_FLAGS = frozenset({"priced", "cached", "simulated", "replayed", "usage_estimated", "batch"})


def _row_reader() -> Callable[[Span], Row]:
    # Reads the slots by name (the interpreter's specialised slot reads, ~4x cheaper than
    # attrgetter's generic lookups), flags as 0/1 (sqlite3 binds a bool through its adapter
    # lookup, ~20x the cost of an int). Two tuple displays joined: one of more than 30 items
    # is compiled as a list appended to and copied into a tuple, which costs more.
    def item(c: str) -> str:
        return f"(v if (v := s.{c}) is None else +v)" if c in _FLAGS else f"s.{c}"

    half = len(COLUMNS) // 2
    source = ("def _row(s):\n    return (" + ", ".join(map(item, COLUMNS[:half])) + ",) + ("
              + ", ".join(map(item, COLUMNS[half:])) + ",)\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<orchnb store row>", "exec"), namespace)
    return namespace["_row"]


_row = _row_reader()
_meta_of = itemgetter(_META)
_meta_json = json.JSONEncoder(default=str, ensure_ascii=False).encode
_FLAG_AT = tuple(COLUMNS.index(c) for c in _FLAGS)


def _row_slowly(span: Span) -> Row:
    """:func:`_row` for a span whose flag holds something ``+`` refuses (kept as it is)."""
    row = [getattr(span, c, None) for c in COLUMNS]
    for i in _FLAG_AT:
        if isinstance(row[i], bool):
            row[i] = int(row[i])
    return tuple(row)


def _meta_text(meta: Any) -> str:
    try:
        return _meta_json(meta)
    except Exception as e:  # not JSON (circular, non-text keys): said so, the rest kept
        return safe_text(f"unserialisable meta ({type(e).__name__}): {meta!r}"[:MAX_TEXT])


def scrub_rows(rows: list[Row]) -> list[Row]:
    """``rows`` with API keys scrubbed out of their text columns (a row without any key marker
    is kept as it is)."""
    return [_scrub_row(row) for row in rows]


def _needs_scrub(rows: list[Row]) -> bool:
    """Whether a row may hold an API key: one test over the text columns of the whole batch
    (the same answer as one per row: the NUL separator is in no key or marker), gathered
    column by column without a Python loop."""
    try:
        return needs_scrub("\x00".join(filter(None, chain.from_iterable(
            map(map, _TEXT_OF, repeat(rows))))))
    except TypeError:  # a value that is not text (a tampered batch): as its text
        return needs_scrub("\x00".join(map(str, filter(None, chain.from_iterable(
            map(_texts, rows))))))


def _scrub_row(row: Row) -> Row:
    """``row`` with API keys scrubbed out of its text columns (error, input, output, raw label,
    meta): one cheap substring test over all of them, the regexes only when it finds a marker."""
    if not needs_scrub(f"{row[_E]}\x00{row[_I]}\x00{row[_O]}\x00{row[_R]}\x00{row[_M]}"):
        return row
    out = list(row)
    for i in _TEXT_COLUMNS:
        if isinstance(out[i], str):
            out[i] = scrub_secrets(out[i])
    return tuple(out)


def safe_value(v: Any) -> Any:
    """``v`` as something SQLite and JSON store faithfully: text encodable as UTF-8, integers
    within 64 bits (larger ones as floats, ±inf beyond), any other object as its text."""
    cls = v.__class__
    if cls is str:
        return safe_text(v)
    if v is None or cls is float or cls is bool:
        return v
    if cls is int:
        return v if -_INT64 <= v < _INT64 else _big(v)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, (int, float, str)):  # subclasses (enums, numpy floats): plain values
        return safe_value(int(v) if isinstance(v, int) else float(v) if isinstance(v, float)
                          else str.__str__(v))
    if hasattr(v, "item"):  # numpy scalars
        try:
            item = v.item()
        except Exception:
            item = None
        if item.__class__ in _SCALARS:
            return safe_value(item)
    return safe_text(str(v)[:MAX_TEXT])


def _big(v: int) -> float:
    try:
        return float(v)
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")


def safe_rows(rows: list[Row]) -> list[Row]:
    """``rows`` with every value made storable by :func:`safe_value`."""
    return [tuple(map(safe_value, row)) for row in rows]


# The stdlib encoder writes NaN (an unknown price) as JSON's non-standard NaN, which json.loads
# reads back; orjson (``orchnb[fast]``), ten times faster, writes null: the same to the spans
# table, where SQLite stores a NaN as NULL anyway.
_json_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False,
                                separators=(",", ":")).encode
_fast_encode: Callable[[Any], Any] | None = None


def encode(rows: list[Row]) -> tuple[str | bytes, list[Row]]:
    """``(batch, rows)``: the rows as one JSON batch, and the rows as encoded (made storable by
    :func:`safe_rows` when one of them was not: a surrogate, a huge integer, an object)."""
    global _fast_encode
    if _fast_encode is None:  # imported on first use: `import orchnb` stays light
        try:
            import orjson
        except ImportError:
            _fast_encode = _json_encode
        else:
            _fast_encode = orjson.dumps
    try:
        batch = _fast_encode(rows)
    except (TypeError, ValueError):  # orjson: a surrogate, an int beyond 64 bits...
        rows = safe_rows(rows)
        return _json_encode(rows), rows
    if isinstance(batch, str) and not batch.isascii():
        try:  # the stdlib encoder lets a lone surrogate through: SQLite cannot bind it
            batch.encode("utf-8")
        except UnicodeEncodeError:
            rows = safe_rows(rows)
            batch = _json_encode(rows)
    return batch, rows


def decode(text: Any) -> list[Row] | None:
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


def insert_spans(conn: sqlite3.Connection, rows: list[Row]) -> list[Row] | None:
    """``INSERT OR REPLACE`` the rows into ``spans`` (inside the caller's transaction); a value
    SQLite cannot bind (from a tampered batch) is made storable rather than failing them all.

    Returns the rows in the order they were inserted (their rowids follow one another in that
    order), or None when some were inserted twice (the fallback) and the order is not known."""
    try:
        return _insert(conn, rows)
    except (UnicodeEncodeError, OverflowError, sqlite3.InterfaceError,
            sqlite3.ProgrammingError):
        _insert(conn, safe_rows(rows))  # OR REPLACE: rows already inserted are rewritten
        return None


_NAN_FOR_NONE = {None: float("nan")}.get
_INSERTS: dict[tuple[str, ...], str] = {}


def _insert(conn: sqlite3.Connection, rows: list[Row]) -> list[Row]:
    # The sqlite3 module binds a None through its adapter lookup (an AttributeError raised and
    # cleared, ~20x the cost of a number), and most of a span's columns are None. Spans of one
    # kind fill the same columns: those are bound, column by column without a Python loop a
    # row, and a None among them as NaN (which SQLite stores as NULL, as it stores a NaN).
    groups: dict[Any, list[Row]] = {}
    for row in rows:
        groups.setdefault(row[KIND], []).append(row)
    for group in groups.values():
        names, values = [], []
        for name, column in zip(COLUMNS, zip(*group)):
            if not any(map(is_not, column, repeat(None))):
                continue
            if not all(map(is_not, column, repeat(None))):
                column = tuple(map(_NAN_FOR_NONE, column, column))
            names.append(name)
            values.append(column)
        conn.executemany(_insert_for(tuple(names)), zip(*values))
    return rows if len(groups) < 2 else [row for group in groups.values() for row in group]


def _insert_for(names: tuple[str, ...]) -> str:
    """The INSERT naming only the columns ``names`` (the others stay NULL)."""
    sql = _INSERTS.get(names)
    if sql is None:
        sql = _INSERTS[names] = (
            f"INSERT OR REPLACE INTO spans ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})")
    return sql


INSERT = (
    f"INSERT OR REPLACE INTO spans ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)
"""The INSERT of a whole row (every column, in ``COLUMNS`` order)."""
