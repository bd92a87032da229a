"""Hostile bytes are data, not crashes: whatever a model replies is stored, shown and exported
(replaced where UTF-8 cannot encode it), and the span writer survives anything; should it die
anyway, the next run says so and a new writer stores everything that was queued."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest

import orchnb
from orchnb.trace import Span, SpanStore, _store, get_store

SURROGATE, NUL = "x\ud800y", "a\x00b"


def _hostile_models() -> None:
    orchnb.sim_model("surrogate", default=SURROGATE)
    # A function model: the reply is whatever the function returns.
    orchnb.sim_model("nul", fn=lambda request: NUL)


def _pipelines() -> tuple[orchnb.Chain, orchnb.MapReduce]:
    chain = orchnb.Chain("hostile-chain", [orchnb.Step("s", "sim:surrogate", "{{ input }}"),
                                           orchnb.Step("n", "sim:nul", "{{ input }}")])
    mapreduce = orchnb.MapReduce("hostile-mr", orchnb.Step("m", "sim:surrogate", "{{ input }}"),
                                 reduce=lambda outputs: "|".join(outputs))
    return chain, mapreduce


@pytest.mark.parametrize("cache", [True, False])
def test_surrogate_and_nul_replies_are_stored_and_later_runs_too(cache):
    _hostile_models()
    chain, mapreduce = _pipelines()
    runs = [chain("hi \ud800", cache=cache), mapreduce(["a", "b\ud800"], cache=cache)]
    later = orchnb.Chain("later", [orchnb.Step("e", "sim:echo", "{{ input }}")])("still stored")
    assert [r.status for r in runs] == ["ok", "ok"]
    assert runs[0].output == NUL  # the run's own value is the model's, untouched

    df = orchnb.traces()
    for run in [*runs, later]:
        stored = df[df.run_id == run.id]
        assert len(stored) == len(run.trace.df)
        assert set(stored.status) == {"ok"}
    outputs = set(df[df.kind == "model"].output)
    assert {"x\ufffdy", NUL} <= outputs  # the surrogate replaced, the NUL kept
    # Shown: the run's own frame has the same replaced text.
    assert "x\ufffdy" in set(runs[1].trace.df.output)
    assert get_store()._thread.is_alive()


def test_hostile_text_exports_to_csv_parquet_and_otel(tmp_path):
    _hostile_models()
    chain, _ = _pipelines()
    run = chain("hi")
    frames = {"memory": run.trace.df, "store": orchnb.traces(run_id=run.id)}
    for name, df in [*frames.items(), ("objects", frames["memory"].astype(object))]:
        if name == "objects":
            df.loc[df.index[0], "output"] = SURROGATE  # a frame built by hand, not by orchnb
        csv = orchnb.trace.to_csv(df, tmp_path / f"{name}.csv")
        assert "x\ufffdy" in csv.read_text(encoding="utf-8")
        pytest.importorskip("pyarrow")
        orchnb.trace.to_parquet(df, tmp_path / f"{name}.parquet")
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    df = frames["memory"].astype(object)
    df.loc[df.kind == "model", "output"] = SURROGATE
    assert orchnb.trace.to_otel(df, provider, include_content=True) == len(df)
    texts = [v for s in exporter.get_finished_spans() for v in s.attributes.values()
             if isinstance(v, str)]
    assert any("x\ufffdy" in t for t in texts)
    for t in texts:
        t.encode("utf-8")  # nothing UTF-8 cannot encode reached the exporter


def test_a_ten_megabyte_reply_is_stored_clipped():
    orchnb.sim_model("huge", default="z" * 10_000_000 + SURROGATE)
    run = orchnb.Chain("huge", [orchnb.Step("h", "sim:huge", "{{ input }}")])("go")
    df = orchnb.traces(run_id=run.id)
    out = df[df.kind == "model"].output.iloc[0]
    assert len(out) <= orchnb.trace.MAX_TEXT + 50 and out.endswith("[10000003 chars]")


def test_values_sqlite_cannot_bind_are_stored_as_the_nearest_thing(tmp_path):
    store = SpanStore(tmp_path / "t.sqlite")
    span = Span("r", "r.1", None, "p\ud800", "chain", "s", "model", status="ok",
                start=time.time(), input_tokens=2**70, output_tokens=10**400,
                output=NUL, meta={(1, 2): "tuple keys are not JSON"})
    store.write(span)
    store.flush()
    (row,) = store.read_rows()
    got = dict(zip(orchnb.trace.COLUMNS, row))
    assert got["pipeline"] == "p\ufffd" and got["output"] == NUL
    assert got["input_tokens"] == float(2**70) and got["output_tokens"] == float("inf")
    assert "unserialisable meta" in got["meta"]
    assert store._thread.is_alive()


class _Boom(BaseException):
    """Nothing orchnb catches as an error: the writer thread dies of it."""


def _fail_once_in_writer(monkeypatch, error: BaseException) -> list[int]:
    """Make the writer thread's next batch raise ``error`` (once); returns the hit counter."""
    hits: list[int] = []
    real = _store.to_rows

    def to_rows(spans):
        if threading.current_thread().name == "orchnb-span-writer" and not hits:
            hits.append(1)
            raise error
        return real(spans)

    monkeypatch.setattr(_store, "to_rows", to_rows)
    return hits


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_dead_writer_is_replaced_loudly_and_nothing_queued_is_lost(monkeypatch, caplog):
    store = get_store()
    hits = _fail_once_in_writer(monkeypatch, _Boom("simulated death"))
    pipe = orchnb.Chain("dies", [orchnb.Step("e", "sim:echo", "{{ input }}")])
    first = pipe("first")
    old = store._thread
    _wait(lambda: not old.is_alive())
    assert hits and store._queue  # the batch it held went back to the queue
    with caplog.at_level(logging.ERROR, "orchnb"), \
            pytest.warns(RuntimeWarning, match=r"span writer .* had stopped \(_Boom: "
                                                r"simulated death\); a new one takes over"):
        second = pipe("second")
    assert store._thread.is_alive() and store._thread is not old
    assert "had stopped" in caplog.text
    df = orchnb.traces()
    for run in (first, second):
        assert len(df[df.run_id == run.id]) == len(run.trace.df)
        assert set(df[df.run_id == run.id].status) == {"ok"}


def test_a_failing_write_is_retried_by_the_same_writer(monkeypatch, caplog):
    store = get_store()
    thread = store._thread
    hits = _fail_once_in_writer(monkeypatch, sqlite3.OperationalError("database is locked"))
    with caplog.at_level(logging.WARNING, "orchnb"):
        run = orchnb.Chain("retried", [orchnb.Step("e", "sim:echo", "{{ input }}")])("x")
        _wait(lambda: bool(hits) and not store._queue)
    assert store._thread is thread and thread.is_alive()
    assert "its spans stay queued and are retried" in caplog.text
    assert len(orchnb.traces(run_id=run.id)) == len(run.trace.df)
