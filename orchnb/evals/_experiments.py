"""Experiments saved next to the traces: ``experiments.sqlite`` in ``orchnb.trace.home()``.

One row per experiment: its id, name, time, candidates and the per-row scores of each (JSON), so
that ``load_experiment(id)`` in a new kernel rebuilds the tables, tests and charts without
re-running anything. Attached labels are saved as a reference (``Labels.ref``: the set's name
and rows' keys), not a copy: the labels store stays their one source, so labels given after
the save show too. Rows in, rows out: building an ``Experiment`` from one is ``_compare``'s.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import home

if TYPE_CHECKING:
    import pandas as pd

    from ._compare import Experiment

_SCHEMA = """CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, name TEXT, created REAL, candidates TEXT, rows INTEGER,
    scorers TEXT, decision TEXT, data TEXT)"""


def _path() -> Path:
    return home() / "experiments.sqlite"


def _connect() -> sqlite3.Connection:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.execute(_SCHEMA)
    return conn


def save_experiment(exp: Experiment) -> str:
    """Store (or replace) ``exp``; returns its id."""
    exp_id = exp.id or f"exp-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    first = next(iter(exp.reports.values()))
    ref = getattr(exp.labels, "ref", None)
    data = json.dumps({"alpha": exp.alpha, "margin": exp.margin,
                       "reports": {k: r.to_record() for k, r in exp.reports.items()},
                       "labels": ref() if callable(ref) else None})
    conn = _connect()
    try:
        with conn:
            conn.execute("INSERT OR REPLACE INTO experiments VALUES (?,?,?,?,?,?,?,?)",
                         (exp_id, exp.name, exp.created, json.dumps(list(exp.reports)),
                          first.n, json.dumps(exp.scorer_names), exp.decision, data))
    finally:
        conn.close()
    return exp_id


def experiments() -> pd.DataFrame:
    """The saved experiments, newest first: id, name, created, candidates, rows, scorers,
    decision.

    >>> orchnb.evals.experiments().head()   # doctest: +SKIP
    """
    import pandas as pd

    cols = ["id", "name", "created", "candidates", "rows", "scorers", "decision"]
    if not _path().exists():
        return pd.DataFrame(columns=cols)
    conn = _connect()
    try:
        rows = conn.execute(f"SELECT {', '.join(cols)} FROM experiments ORDER BY created DESC"
                            ).fetchall()
    finally:
        conn.close()
    df = pd.DataFrame(rows, columns=cols)
    df["created"] = pd.to_datetime(df["created"], unit="s", utc=True)
    for c in ("candidates", "scorers"):
        df[c] = df[c].map(json.loads)
    return df


def read_experiment(id_or_name: str) -> tuple[str, str, float, dict[str, Any]]:
    """A saved experiment's id, name, time and payload (``alpha`` and each report's record),
    by id or by name (the newest of that name)."""
    row = None
    if _path().exists():
        conn = _connect()
        try:
            row = conn.execute("SELECT id, name, created, data FROM experiments WHERE id = ? OR "
                               "name = ? ORDER BY created DESC LIMIT 1",
                               (id_or_name, id_or_name)).fetchone()
        finally:
            conn.close()
    if row is None:
        raise SpecError(f"no saved experiment {id_or_name!r} in {_path()}; "
                        f"orchnb.evals.experiments() lists them")
    exp_id, name, created, data = row
    return exp_id, name, created, json.loads(data)
