"""The SQLite span store: WAL, idempotent migrations, prompt persistence."""

from __future__ import annotations

import sqlite3
import time

import pytest

import orchnb
from orchnb.trace import COLUMNS, Span, SpanStore, _columnar
from orchnb.trace._store import MIGRATIONS, connect


def span(i: int, run: str = "r1") -> Span:
    return Span(run, f"{run}.{i}", None, "p", "chain", f"s{i}", "model", status="ok",
                start=time.time(), end=time.time(), latency_ms=1.0, cost_usd=float("nan"),
                priced=False, input_tokens=3)


def test_store_is_wal_and_migrations_are_idempotent(tmp_path):
    path = tmp_path / "t.sqlite"
    connect(path).close()
    conn = connect(path)  # second time: nothing re-applied, no error
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in conn.execute("SELECT name FROM _migrations")]
    assert names == [m[0] for m in MIGRATIONS]
    cols = [r[1] for r in conn.execute("PRAGMA table_info(spans)")]
    assert cols == list(COLUMNS)


def test_spans_reach_disk_without_an_explicit_flush(tmp_path):
    store = SpanStore(tmp_path / "t.sqlite")
    store.write(span(1))
    deadline = time.time() + 2
    other = sqlite3.connect(tmp_path / "t.sqlite")
    while time.time() < deadline:
        if other.execute("SELECT count(*) FROM spans").fetchone()[0] == 1:
            break
        time.sleep(0.01)
    assert other.execute("SELECT count(*) FROM spans").fetchone()[0] == 1


def test_traces_reads_unpriced_cost_as_nan(tmp_path):
    store = orchnb.trace.get_store()
    store.write(span(1, "zz"))
    df = orchnb.traces(run_id="zz")
    assert len(df) == 1 and df.cost_usd.isna().all() and not df.priced.iloc[0]
    assert str(df.start.dtype).startswith("datetime64")
    assert str(df.input_tokens.dtype) == "Int64"


def test_logged_batches_are_json_never_marshal(tmp_path, monkeypatch):
    import json
    import marshal

    def refuse(*_):
        raise AssertionError("the store must not unmarshal what it reads")

    monkeypatch.setattr(marshal, "loads", refuse)
    store = SpanStore(tmp_path / "t.sqlite")
    store._closed = True  # stop the writer thread: the batch stays in the log to look at
    store.write(span(1))
    store._drain()
    (text,) = store._conn.execute("SELECT rows FROM span_batches").fetchone()
    assert json.loads(text)[0][1] == "r1.1"
    store._mine.clear()  # as if another process wrote it: compaction parses the JSON
    store.compact()
    assert [r[1] for r in store.read_rows()] == ["r1.1"]


@pytest.mark.parametrize("payload", [
    b"\xff\xfe not json", "[[1, 2]]", '{"a": 1}', "[" * 100_000, '[["r", 5]]', "[[null]]",
])
def test_a_tampered_batch_is_dropped_with_a_warning_not_a_crash(tmp_path, payload):
    path = tmp_path / "t.sqlite"
    conn = connect(path)
    conn.execute("INSERT INTO span_batches (rows) VALUES (?)", (payload,))
    conn.close()
    # The writer thread may compact the batch first (it does when the store goes quiet): the
    # warning comes from whichever compaction reads it, so both are inside the block.
    with pytest.warns(RuntimeWarning, match="dropped 1 batch"):
        store = SpanStore(path)
        store.compact()
    store.write(span(2))
    assert [r[1] for r in store.read_rows()] == ["r1.2"]


def test_a_batch_with_a_nested_value_is_dropped(tmp_path):
    import json

    row = list(span(1).to_row())
    row[COLUMNS.index("output")] = ["not", "a", "scalar"]
    conn = connect(tmp_path / "t.sqlite")
    conn.execute("INSERT INTO span_batches (rows) VALUES (?)", (json.dumps([row]),))
    conn.close()
    with pytest.warns(RuntimeWarning, match="dropped"):
        assert SpanStore(tmp_path / "t.sqlite").read_rows() == []


def test_a_store_from_a_newer_orchnb_is_refused(tmp_path):
    from orchnb.trace._store import SCHEMA_VERSION

    path = tmp_path / "t.sqlite"
    conn = connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(orchnb.OrchnbError, match="written by a newer orchnb"):
        connect(path)


def test_a_store_with_unknown_migrations_is_refused(tmp_path):
    path = tmp_path / "t.sqlite"
    conn = connect(path)
    conn.execute("INSERT INTO _migrations VALUES ('999_future', 0)")
    conn.close()
    with pytest.raises(orchnb.OrchnbError, match="999_future"):
        connect(path)


def test_a_store_of_the_previous_schema_is_migrated_and_keeps_its_spans(tmp_path):
    import marshal

    from orchnb.trace._store import SCHEMA_VERSION

    path = tmp_path / "t.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL)")
    for name, sql in MIGRATIONS[:2]:  # what orchnb wrote before batches were JSON
        old.executescript(sql)
        old.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    old.execute("INSERT INTO spans (run_id, span_id, start) VALUES ('old', 'old.1', ?)",
                (time.time(),))
    old.execute("INSERT INTO span_log (rows) VALUES (?)", (marshal.dumps([span(9).to_row()]),))
    old.close()
    with pytest.warns(RuntimeWarning, match="no longer reads"):
        store = SpanStore(path)
    assert [r[1] for r in store.read_rows()] == ["old.1"]  # the marshal batch is never read
    assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_stored_text_is_scrubbed_of_keys(tmp_path):
    from orchnb.models import remember_secret

    remember_secret("stored-secret-0123456789")
    s = span(1)
    s.status, s.error = "error", "ProviderError: HTTP 401 Bearer abcdefgh12345678"
    s.output = "echo stored-secret-0123456789"
    s.input = "sk-abcdefghijklmnopqrstuvwx"
    store = SpanStore(tmp_path / "t.sqlite")
    store.write(s)
    (row,) = store.read_rows()
    stored = dict(zip(COLUMNS, row, strict=True))
    assert stored["error"] == "ProviderError: HTTP 401 Bearer [REDACTED]"
    assert stored["output"] == "echo [REDACTED]" and stored["input"] == "[REDACTED]"
    store.close()
    files = [f for f in tmp_path.rglob("*") if f.is_file()]  # the columnar copy too
    assert any(f.suffix == ".arrow" for f in files) or not _columnar.available()
    for f in files:
        assert b"stored-secret" not in f.read_bytes() and b"abcdefgh1234" not in f.read_bytes()


def test_one_key_in_a_batch_is_scrubbed_and_the_other_rows_are_kept_as_they_are(tmp_path):
    store = SpanStore(tmp_path / "t.sqlite")
    spans = [span(i) for i in range(1, 6)]
    for i, s in enumerate(spans):
        s.output = f"answer {i} with a task-list"
    spans[2].output = "the key is sk-abcdefghijklmnopqrstuvwx"
    for s in spans:
        store.write(s)
    outputs = [dict(zip(COLUMNS, r, strict=True))["output"] for r in store.read_rows()]
    assert sorted(outputs) == sorted([f"answer {i} with a task-list" for i in (0, 1, 3, 4)]
                                     + ["the key is [REDACTED]"])
    store.close()


def test_a_store_before_fork_columns_gains_them_and_the_runs_table(tmp_path):
    path = tmp_path / "t.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL)")
    for name, sql in MIGRATIONS[:4]:  # up to 004_ttft
        old.executescript(sql)
        old.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    old.execute("INSERT INTO spans (run_id, span_id, start) VALUES ('old', 'old.1', 1.0)")
    old.close()
    store = SpanStore(path)
    s = span(2)
    s.replayed, s.forked_from = True, "old"
    store.write(s)
    store.write_run("r", "pattern: chain\nsteps: []", '["a"]')
    rows = {r[1]: dict(zip(COLUMNS, r, strict=True)) for r in store.read_rows()}
    assert rows["old.1"]["forked_from"] is None
    assert rows[s.span_id]["replayed"] == 1 and rows[s.span_id]["forked_from"] == "old"
    assert store.read_run("r") == ("pattern: chain\nsteps: []", '["a"]')
    assert store.read_run("nope") == (None, None)
    store.close()


def test_batches_logged_before_009_are_kept_and_batch_ids_never_repeat(tmp_path):
    import json

    path = tmp_path / "t.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL)")
    for name, sql in MIGRATIONS[:8]:  # up to 008: batch ids reused once the log emptied
        old.executescript(sql)
        old.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    old.execute("INSERT INTO span_batches (id, rows) VALUES (7, ?)",
                (json.dumps([list(span(1, "crashed-kernel").to_row())]),))
    old.close()
    conn = connect(path)
    assert "AUTOINCREMENT" in conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'span_batches'").fetchone()[0]
    conn.execute("DELETE FROM span_batches")
    # SQLite would give a deleted batch's id to the next one without AUTOINCREMENT; a process
    # remembering that id as its own then compacted its copy instead (spans lost).
    assert conn.execute("INSERT INTO span_batches (rows) VALUES ('[]')").lastrowid == 8
    conn.execute("DELETE FROM span_batches")
    conn.execute("INSERT INTO span_batches (id, rows) VALUES (7, ?)",
                 (json.dumps([list(span(1, "crashed-kernel").to_row())]),))
    conn.close()
    store = SpanStore(path)
    assert [r[1] for r in store.read_rows()] == ["crashed-kernel.1"]
    store.close()


def test_processes_opening_a_new_store_at_once_apply_each_migration_once(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "t.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = ("import sys; from orchnb.trace._store import connect; from pathlib import Path; "
            "connect(Path(sys.argv[1])).close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    conn = connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations")] == [
        m[0] for m in MIGRATIONS]


def test_every_read_sees_every_run_and_the_writer_keeps_writing():
    """Reads never go through a second SQLite library (ADBC's, when installed): two copies in
    one process on the file this process writes read stale snapshots (3, 3, 3, 3 spans after
    four runs) and break the writer's locks (sqlite3 'disk I/O error')."""
    pipe = orchnb.Chain("p", [orchnb.Step("a", "sim:echo", "{{ input }}")])
    counts = []
    for i in range(4):
        pipe(f"run {i}")
        counts.append(len(orchnb.traces()))
    assert counts == [3, 6, 9, 12]
    pipe("after the reads")
    assert len(orchnb.traces()) == 15


def test_none_among_a_kinds_values_and_flags_read_back_as_sqlite_stores_them(tmp_path):
    store = SpanStore(tmp_path / "t.sqlite")
    store.columnar = False  # SQLite's rows are the point here
    full = span(1)
    full.cached, full.output, full.cached_tokens = True, "out", 4
    sparse = span(2)  # the same kind, some of the columns full fills left None
    sparse.cost_usd, sparse.priced = None, None
    for s in (full, sparse):
        store.write(s)
    rows = {r[1]: dict(zip(COLUMNS, r, strict=True)) for r in store.read_rows()}
    assert rows["r1.1"]["cached"] == 1 and rows["r1.1"]["cached_tokens"] == 4
    assert rows["r1.2"]["cached"] is None and rows["r1.2"]["output"] is None
    assert rows["r1.2"]["cost_usd"] is None and rows["r1.2"]["priced"] is None
    assert rows["r1.2"]["cached_tokens"] is None and rows["r1.2"]["input_tokens"] == 3
    store.close()


def test_all_none_text_columns_of_a_frame_are_independent():
    from orchnb.trace._frame import rows_to_frame

    df = rows_to_frame([("r", f"r.{i}") + (None,) * (len(COLUMNS) - 2) for i in range(3)])
    assert df["error"].dtype == object and df["route"].dtype == object
    df.loc[0, "error"] = "set"  # columns built from one shared array would all change
    assert df["error"].tolist() == ["set", None, None]
    assert df["route"].tolist() == df["tool"].tolist() == [None] * 3
