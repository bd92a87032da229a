"""The columnar copy of the span store (``_columnar``, ``_fastread``): reads through it give the
very DataFrame the sqlite3 path gives, whatever wrote the store (spans written twice, two
writers, a writer without pyarrow, a crash mid-file), and ``orchnb.traces()`` filters."""

from __future__ import annotations

import os
import sqlite3

import pandas as pd
import pytest

import orchnb
from orchnb.exceptions import SpecError
from orchnb.trace import COLUMNS, Span, SpanStore, _columnar, _fastread
from orchnb.trace._frame import chunks_to_frame

pytest.importorskip("pyarrow")

T0 = 1.76e9


def span(run: str, i: int, status: str = "ok", **kw: object) -> Span:
    fields = dict(status=status, start=T0 + i, end=T0 + i + 0.5, latency_ms=500.0,
                  input=f"in {run} {i} é", output=None if i % 3 else "out",
                  input_tokens=i if i % 2 else None, cost_usd=float("nan") if i % 4 else 0.1,
                  priced=bool(i % 4 == 0), meta={"i": i} if i % 5 == 0 else None)
    fields.update(kw)
    return Span(run, f"{run}.{i}", None if i == 0 else f"{run}.0", "p", "chain", f"s{i}",
                "run" if i == 0 else "model", **fields)  # type: ignore[arg-type]


def write(store: SpanStore, spans: list[Span]) -> None:
    for s in spans:
        store.write(s)
    store.flush()
    store.compact()  # one compaction: one file of the copy
    store.columns_written()


def sqlite_frame(store: SpanStore) -> pd.DataFrame:
    return chunks_to_frame(store.iter_rows())


def copy_frame(store: SpanStore) -> pd.DataFrame:
    assert _fastread.read_table(store, list(COLUMNS)) is not None, "fell back to sqlite3"
    df = _fastread.read_frame(store, COLUMNS)
    assert df is not None
    return df


def files(store: SpanStore) -> list[str]:
    return [p.name for _, _, p in _columnar.listing(_columnar.folder(store.path))]


def test_spans_written_twice_read_back_as_sqlite_has_them(tmp_path):
    store = SpanStore(tmp_path / "t.sqlite")
    write(store, [span("a", 0, "running"), span("a", 1), span("a", 2)])
    write(store, [span("a", 3), span("a", 0, "ok", output="done")])  # the run span again
    write(store, [span("b", 4, start=T0 + 2)])  # ties on start: by rowid, as SQLite orders
    assert len(files(store)) == 3
    df = copy_frame(store)
    pd.testing.assert_frame_equal(df, sqlite_frame(store))
    assert df.set_index("span_id").status["a.0"] == "ok" and len(df) == 5


def test_two_writers_on_one_store_each_write_their_own_files(tmp_path):
    one, two = SpanStore(tmp_path / "t.sqlite"), SpanStore(tmp_path / "t.sqlite")
    write(one, [span("a", 0, "running"), span("a", 1)])
    write(two, [span("b", 2), span("b", 3)])
    write(two, [span("a", 0, "ok")])  # one's run span, ended by the other writer
    write(one, [span("a", 4)])
    assert len({name.rsplit("-", 1)[1] for name in files(one)}) == 2
    for store in (one, two):
        pd.testing.assert_frame_equal(copy_frame(store), sqlite_frame(store))


def test_what_a_writer_without_pyarrow_stored_is_read_from_sqlite_once(tmp_path):
    plain = SpanStore(tmp_path / "t.sqlite")
    plain.columnar = False  # another process, without the fast extra
    write(plain, [span("a", i) for i in range(5)])
    store = SpanStore(tmp_path / "t.sqlite")
    write(store, [span("b", i) for i in range(5, 8)])
    write(plain, [span("c", 8)])
    pd.testing.assert_frame_equal(copy_frame(store), sqlite_frame(store))
    before = files(store)  # the gaps became files, merged with the rest into one
    assert len(before) == 1 and before[0].startswith(f"{0:020d}-{9:020d}-")
    pd.testing.assert_frame_equal(copy_frame(store), sqlite_frame(store))
    assert files(store) == before


def test_a_half_written_or_damaged_file_is_ignored(tmp_path):
    store = SpanStore(tmp_path / "t.sqlite")
    write(store, [span("a", i) for i in range(4)])
    write(store, [span("b", i) for i in range(4, 9)])
    folder = _columnar.folder(store.path)
    _, second = sorted(folder.iterdir())
    data = second.read_bytes()
    second.write_bytes(data[: len(data) // 2])  # a file cut short (a disk that lied)
    (folder / f"{second.name}.123.tmp").write_bytes(data[:100])  # a crashed writer's
    (folder / f"{0:020d}-{99:020d}-junk.arrow").write_bytes(b"not arrow")
    pd.testing.assert_frame_equal(copy_frame(store), sqlite_frame(store))


def test_a_copy_that_disagrees_with_sqlite_is_dropped(tmp_path, caplog):
    store = SpanStore(tmp_path / "t.sqlite")
    write(store, [span("a", i) for i in range(4)])
    sqlite3.connect(store.path, isolation_level=None).execute(
        "DELETE FROM spans WHERE span_id = 'a.2'")  # by hand: orchnb never deletes spans
    assert _fastread.read_table(store, list(COLUMNS)) is None
    assert "disagrees with it; it is rebuilt" in caplog.text
    assert files(store) == []
    pd.testing.assert_frame_equal(copy_frame(store), sqlite_frame(store))  # rebuilt


def test_many_small_files_are_merged_by_a_whole_read(tmp_path):
    store = SpanStore(tmp_path / "t.sqlite")
    write(store, [span("a", i) for i in range(40)])
    for i in range(40, 52):
        write(store, [span("a", i), span("a", 0, output=f"v{i}")])  # superseded each time
    assert len(files(store)) == 13
    pd.testing.assert_frame_equal(copy_frame(store), sqlite_frame(store))
    assert len(files(store)) == 2  # the first, and the twelve after it as one
    pd.testing.assert_frame_equal(copy_frame(store), sqlite_frame(store))


def test_traces_filters_match_filtering_the_whole_frame(orchnb_home):
    store = orchnb.trace.get_store()
    runs = [[span(r, 10 * k + i, start=T0 + 10 * k + i) for i in range(10)]
            for k, r in enumerate("abcd")]
    for k, spans in enumerate(runs):
        for s in spans:
            s.pipeline = "even" if k % 2 == 0 else "odd"
        write(store, spans)
    full = orchnb.traces()
    assert len(full) == 40

    def same(df: pd.DataFrame, want: pd.DataFrame) -> None:
        pd.testing.assert_frame_equal(df, want.reset_index(drop=True))

    same(orchnb.traces(run_id="c"), full[full.run_id == "c"])
    since = full.start.iloc[25]
    for when in (since, since.to_pydatetime(), since.timestamp(), since.isoformat()):
        same(orchnb.traces(since=when), full[full.start >= since])
    same(orchnb.traces(pipeline="odd", since=since), full[(full.pipeline == "odd")
                                                          & (full.start >= since)])
    same(orchnb.traces(columns=["status", "cost_usd"]), full[["status", "cost_usd"]])
    same(orchnb.traces(run_id="a", columns=["span_id"]), full[full.run_id == "a"][["span_id"]])
    assert orchnb.traces(since=T0 + 1000).empty
    with pytest.raises(SpecError, match=r"unknown column.*'nope'.*run_id"):
        orchnb.traces(columns=["run_id", "nope"])
    with pytest.raises(SpecError, match="not an ISO date"):
        orchnb.traces(since="yesterday")


def test_one_run_is_read_through_the_run_id_index_only(orchnb_home, monkeypatch):
    from orchnb.trace._readers import _select

    store = orchnb.trace.get_store()
    write(store, [span("big", i) for i in range(50)] + [span("one", 50 + i) for i in range(5)])

    def whole_store(*_: object, **__: object) -> None:
        raise AssertionError("one run must not read the whole store")

    monkeypatch.setattr("orchnb.trace._query.read_frame", whole_store)
    assert orchnb.traces(run_id="one").span_id.tolist() == [f"one.{50 + i}" for i in range(5)]
    plan = " ".join(str(r) for r in sqlite3.connect(store.path).execute(
        "EXPLAIN QUERY PLAN " + _select("run_id = ?", ["span_id"]), ("one",)))
    assert "INDEX spans_run" in plan


def test_without_pyarrow_reads_and_writes_go_through_sqlite3(orchnb_home, monkeypatch):
    monkeypatch.setattr(_columnar, "find_spec", lambda name: None)  # as without the extra
    monkeypatch.setattr(_columnar, "_available", None)
    store = orchnb.trace.get_store()
    assert not store.columnar
    write(store, [span("a", i) for i in range(5)])
    assert _fastread.read_frame(store, COLUMNS) is None
    df = orchnb.traces(since=T0 + 2, columns=["span_id", "status"])
    assert df.span_id.tolist() == ["a.2", "a.3", "a.4"]
    assert not os.path.exists(_columnar.folder(store.path))


def test_start_and_end_convert_as_pandas_converts_them_to_the_nanosecond():
    import numpy as np

    from orchnb.trace._frame import _datetimes

    rng = np.random.default_rng(7)
    values = np.concatenate([T0 + rng.random(2000) * 1e6, [np.nan, 0.0, -1.5, 1e-9, 9.1e9]])
    pd.testing.assert_index_equal(pd.DatetimeIndex(_datetimes(values)),
                                  pd.to_datetime(values, unit="s", utc=True))
    far = np.array([1e12, T0])  # beyond datetime64[ns]: whatever pandas makes of it
    pd.testing.assert_index_equal(pd.DatetimeIndex(_datetimes(far)),
                                  pd.to_datetime(far, unit="s", utc=True))
