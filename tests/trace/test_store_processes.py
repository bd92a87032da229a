"""Several processes writing one store at once: every span of every run is stored, and a run
that is still going in another process reads back ``running``, never ``crashed``.

Before batch ids were made never to repeat (migration 009), four processes lost ~10% of their
spans: one process compacted another's batches and deleted them, SQLite gave the freed id to a
new batch, and a process that remembered the id as its own wrote its old copy instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import orchnb

pytestmark = pytest.mark.slow  # eight Python processes at once: 10-40 s on a busy 2-core machine

PROCS, ITEMS, CHAINS = 8, 300, 40
"""Processes at once, and what each writes: 2 map-reduces of ITEMS items and CHAINS chains."""

CHILD = textwrap.dedent("""
    import json, sys
    import orchnb

    items, chains = int(sys.argv[1]), int(sys.argv[2])
    orchnb.configure(progress=False)
    orchnb.sim_model("fast", default="ok")
    step = orchnb.Step("m", "sim:fast", "{{ input }}")
    mapreduce = orchnb.MapReduce("mr", step, reduce=lambda outputs: len(outputs),
                                 concurrency=16)
    chain = orchnb.Chain("ch", [orchnb.Step("a", "sim:fast", "{{ input }}"),
                                orchnb.Step("b", "sim:fast", "{{ input }}")])
    live = chain.start("held open while the others write")
    print("LIVE", live.id, flush=True)
    runs = {}
    for _ in range(2):
        run = mapreduce([f"x{j}" for j in range(items)], )
        runs[run.id] = [len(run.trace.df), run.status]
    for i in range(chains):
        run = chain(f"c{i}")
        runs[run.id] = [len(run.trace.df), run.status]
    print("DONE", json.dumps(runs), flush=True)
    sys.stdin.read()  # the parent checks the live run meanwhile, then closes our stdin
    live.resume()
    print("LIVE_DONE", json.dumps({live.id: [len(live.trace.df), live.status]}), flush=True)
""")


def _line(proc: subprocess.Popen[str], tag: str) -> str:
    """The rest of the child's first stdout line starting with ``tag``."""
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith(tag + " "):
            return line[len(tag) + 1:].strip()
    proc.wait(timeout=60)
    raise AssertionError(f"child {proc.pid} exited ({proc.returncode}) before {tag}: "
                         f"{Path(proc.args[-1]).read_text()[-2000:]}")


def test_eight_processes_on_one_store_lose_no_span_and_no_live_run_reads_crashed(
        tmp_path, orchnb_home):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "ORCHNB_HOME": str(orchnb_home),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    # stderr to files: a pipe nobody reads could fill and stall a child
    errs = [(tmp_path / f"stderr{i}.txt").open("w") for i in range(PROCS)]
    args = [sys.executable, str(script), str(ITEMS), str(CHAINS)]
    procs = [subprocess.Popen([*args, err.name], env=env, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=err) for err in errs]
    try:
        live = [_line(p, "LIVE") for p in procs]
        finished: dict[str, list] = {}
        for p in procs:
            finished.update(json.loads(_line(p, "DONE")))
        # Every child is alive, each holding a run open: none of those reads back crashed.
        df = orchnb.traces()
        runs = df[df.kind == "run"].set_index("run_id")
        assert set(runs.loc[live, "status"]) == {"running"}
        for p in procs:
            p.stdin.close()  # type: ignore[union-attr]
        for p in procs:
            finished.update(json.loads(_line(p, "LIVE_DONE")))
            assert p.wait(timeout=60) == 0
    finally:
        for p, err in zip(procs, errs):
            if p.poll() is None:
                p.kill()
            err.close()
    errors = [e.read_text()[-2000:] for e in sorted(tmp_path.glob("stderr*.txt"))]
    assert not any("Error" in e or "Warning" in e for e in errors), errors
    assert len(finished) == PROCS * (2 + CHAINS + 1)
    df = orchnb.traces()
    stored = df.groupby("run_id").size()
    lost = {r: n - stored.get(r, 0) for r, (n, _) in finished.items() if stored.get(r, 0) != n}
    total = sum(n for n, _ in finished.values())
    assert not lost, (f"{sum(lost.values())} of {total} spans lost in {len(lost)} runs "
                      f"({sum(r not in stored for r in lost)} runs missing entirely)")
    assert len(df) == total
    statuses = df[df.kind == "run"].set_index("run_id").status
    assert {s for _, s in finished.values()} == {"ok"}
    assert (statuses.loc[list(finished)] == "ok").all(), statuses.value_counts().to_dict()
