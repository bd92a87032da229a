"""Crashes: a run whose process died reads back as ``crashed``, and a ``kill -9`` loses at most
the spans that finished in its last 50 ms (the store's writer batches every 20 ms)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import orchnb
from orchnb.trace import get_store

CHILD = textwrap.dedent("""
    import asyncio, sys, time
    import orchnb
    from orchnb import MapReduce

    log = open(sys.argv[1], "w", buffering=1)

    class Log:
        def on_span_end(self, *, span, run):
            log.write(f"{span.span_id} {time.time():.6f}\\n")

    async def work(x):
        await asyncio.sleep(0.001)
        return x

    pipe = MapReduce("crashy", map=work, reduce=lambda outputs: len(outputs), concurrency=8)
    pipe(list(range(200_000)), hooks=[Log()])
""")


def _kill_mid_run(tmp_path: Path, home: Path, min_spans: int = 400) -> tuple[Path, float]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    log = tmp_path / "ended.txt"
    env = {**os.environ, "ORCHNB_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), str(log)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and log.read_text().count("\n") >= min_spans:
                break
            if proc.poll() is not None:
                pytest.fail(f"the child exited early ({proc.returncode})")
            time.sleep(0.02)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return log, killed_at


@pytest.mark.parametrize("repeat", range(2))
def test_kill_9_loses_at_most_the_last_50ms_and_reads_back_as_crashed(tmp_path, orchnb_home,
                                                                      repeat):
    log, killed_at = _kill_mid_run(tmp_path, orchnb_home)
    ended = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:  # the last line may be cut by the kill
            ended[parts[0]] = float(parts[1])
    df = orchnb.traces()
    old = {s for s, t in ended.items() if t < killed_at - 0.05}
    lost = old - set(df.span_id)
    assert len(old) >= 100
    assert not lost, f"{len(lost)} spans that ended 50 ms+ before the kill are missing"
    assert (df.status == "ok").sum() >= len(old)  # the finished ones kept their status
    run = df[df.kind == "run"]
    assert len(run) == 1
    assert run.status.iloc[0] == "crashed"
    assert "died" in run.error.iloc[0]
    # The charts read the same: the run is crashed, not unfinished.
    assert orchnb.viz.summary(df).status.iloc[0] == "crashed"


def test_a_run_of_this_process_still_reads_as_running(fake_env):
    pipe = orchnb.Chain("live", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    run = pipe.start("hi")
    try:
        df = orchnb.traces(run_id=run.id)
        assert df[df.kind == "run"].status.iloc[0] == "running"
    finally:
        run.resume()


def test_a_writer_without_heartbeat_for_long_reads_as_crashed(orchnb_home):
    pipe = orchnb.Chain("stale", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    run = pipe.start("hi")
    store = get_store()
    store.flush()
    # Pretend the run was written by a process on another host that stopped beating.
    with store._lock:
        store._conn.execute("INSERT INTO writers VALUES ('other', 1, 'elsewhere', ?)",
                            (time.time() - 3600,))
        store._conn.execute("UPDATE run_writers SET token = 'other' WHERE run_id = ?",
                            (run.id,))
    df = orchnb.traces(run_id=run.id)
    row = df[df.kind == "run"].iloc[0]
    assert row.status == "crashed"
    assert "no heartbeat" in row.error
    run.resume()
