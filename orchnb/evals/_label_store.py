"""Human labels on disk: ``labels.sqlite`` in ``orchnb.trace.home()``.

A label is keyed by a hash of the row's content (input, output, expected), so the same row
labelled in one kernel is found again after a restart, a re-run of the eval, or in another
notebook. Each label belongs to a named set (``project``, "default" unless told), so two
labelling passes over the same rows can be kept apart. Category merges and renames are
stored too (``categories``), so error analysis survives a restart as well.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..trace import home

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS labels (
        project TEXT NOT NULL, key TEXT NOT NULL, label TEXT, note TEXT, tags TEXT,
        input TEXT, output TEXT, expected TEXT, extra TEXT, created REAL, updated REAL,
        PRIMARY KEY (project, key))""",
    """CREATE TABLE IF NOT EXISTS categories (
        project TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
        PRIMARY KEY (project, source))""",
)
MAX_TEXT = 20_000
"""Characters of a row's input/output/expected kept with its label (the key hashes them all)."""
MAX_NOTE = 2_000
MAX_TAGS = 20


def text_of(x: Any) -> str:
    """A row's cell as text ("" for None / NaN); structured values as sorted JSON."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, str):
        return x
    try:
        return json.dumps(x, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(x)


def row_key(input: Any, output: Any, expected: Any = None) -> str:
    """The key of a row's label: a hash of its input, output and expected answer.

    >>> row_key("2+2?", "4", "4") == row_key("2+2?", "4", "4")
    True
    >>> row_key("2+2?", "4") == row_key("2+2?", "5")
    False
    """
    blob = json.dumps([text_of(input), text_of(output), text_of(expected)])
    return hashlib.sha256(blob.encode("utf-8", "replace")).hexdigest()[:32]


def store_path() -> Path:
    return home() / "labels.sqlite"


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    path = store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    try:
        for stmt in _SCHEMA:
            conn.execute(stmt)
        with conn:
            yield conn
    finally:
        conn.close()


def clean_tags(tags: Any) -> list[str]:
    """Tags as a list of short, stripped, distinct strings (a comma-separated string works)."""
    if tags is None:
        return []
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    out: list[str] = []
    for t in items:
        s = str(t).strip()[:60]
        if s and s not in out:
            out.append(s)
    return out[:MAX_TAGS]


def save_label(project: str, row: Mapping[str, Any], label: Any, *, note: str | None = None,
               tags: Sequence[str] | str | None = None, key: str | None = None) -> str:
    """Store (or replace) the label of ``row`` (a mapping with input, output, expected and
    anything else worth keeping); returns its key. ``label=None`` removes the label."""
    k = key or row_key(row.get("input"), row.get("output"), row.get("expected"))
    if label is None:
        with connect() as conn:
            conn.execute("DELETE FROM labels WHERE project = ? AND key = ?", (project, k))
        return k
    extra = {c: text_of(v)[:2000] for c, v in row.items()
             if c not in ("input", "output", "expected", "key")}
    now = time.time()
    with connect() as conn:
        conn.execute(
            "INSERT INTO labels VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (project, key) DO "
            "UPDATE SET label = excluded.label, note = excluded.note, tags = excluded.tags, "
            "extra = excluded.extra, updated = excluded.updated",
            (project, k, str(label)[:200], (note or "")[:MAX_NOTE] or None,
             json.dumps(clean_tags(tags)), text_of(row.get("input"))[:MAX_TEXT],
             text_of(row.get("output"))[:MAX_TEXT], text_of(row.get("expected"))[:MAX_TEXT],
             json.dumps(extra), now, now))
    return k


COLUMNS = ["key", "label", "note", "tags", "input", "output", "expected", "created", "updated"]


def read_labels(project: str) -> list[dict[str, Any]]:
    """Every label of ``project``, oldest first."""
    if not store_path().exists():
        return []
    with connect() as conn:
        rows = conn.execute(
            "SELECT key, label, note, tags, input, output, expected, created, updated, extra "
            "FROM labels WHERE project = ? ORDER BY created, rowid", (project,)).fetchall()
    out = []
    for r in rows:
        rec = dict(zip(COLUMNS, r[:-1]))
        rec["tags"] = json.loads(rec["tags"] or "[]")
        rec["extra"] = json.loads(r[-1] or "{}")
        out.append(rec)
    return out


def projects() -> list[str]:
    """The label sets in the store."""
    if not store_path().exists():
        return []
    with connect() as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT project FROM labels ORDER BY 1")]


def save_mapping(project: str, source: str, target: str | None) -> None:
    """Map category ``source`` to ``target`` (None removes the mapping)."""
    with connect() as conn:
        if target is None:
            conn.execute("DELETE FROM categories WHERE project = ? AND source = ?",
                         (project, source))
        else:
            conn.execute("INSERT OR REPLACE INTO categories VALUES (?,?,?)",
                         (project, source, target))


def read_mapping(project: str) -> dict[str, str]:
    if not store_path().exists():
        return {}
    with connect() as conn:
        return dict(conn.execute("SELECT source, target FROM categories WHERE project = ?",
                                 (project,)).fetchall())
