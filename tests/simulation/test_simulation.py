"""The simulation test: random pipelines under random faults, budgets and retry policies, each
run checked against the invariants of ``_checks.py`` (FoundationDB-style simulation, Jepsen-style
checkers). A failure prints the scenario as JSON: replay it with ``replay(json)`` below, or the
whole search with ``--hypothesis-seed=N`` (printed too). docs/reliability.md has the details.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _checks import check_all
from _strategies import scenarios
from _world import Node, Scenario, bound_s, fake_env, fake_provider, play
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import orchnb
from orchnb.trace import get_store

TOTAL = settings.default.max_examples
"""The profile's scenario count (ci: 2,000; soak: 50,000), shared out below."""
CHILD = Path(__file__).with_name("_child.py")


def replay(scenario_json: str, fake: object = None) -> list[str]:
    """Run one scenario again from the JSON a failure printed; returns what it broke."""
    s = Scenario.from_json(scenario_json)
    out, limit = play(s, fake)
    return check_all(s, out, limit)


def _verdict(s: Scenario, fake: object = None) -> None:
    out, limit = play(s, fake)
    broken = check_all(s, out, limit)
    assert not broken, (
        "invariants broken:\n  " + "\n  ".join(broken)
        + f"\nscenario (replay: _world.Scenario.from_json(...)):\n{s.to_json()}"
        + f"\nrun status: {getattr(out.run, 'status', None)}, {out.elapsed:.2f}s "
          f"of a {limit:.1f}s bound")


@settings(max_examples=TOTAL * 37 // 40)
@given(s=scenarios("sim"))
def test_sim_pipelines_keep_every_invariant(s):
    _verdict(s)


# The repros, always among the scenarios (random search finds them only now and then).
_STEP = Node("step")
KNOWN = {
    # a budget plus any retry deadlocked a fan-out for ever (items waiting to retry gave back
    # their slot but kept their budget; new items took the slots and waited on that budget)
    "budget_retry_deadlock": Scenario(
        Node("mapreduce", (_STEP,), concurrency=2, on_error="skip"), items=4,
        faults=(("slow", 1.0),), hang=1.0, timeout=0.1, max_attempts=3, backoff=0.01,
        max_calls=2),
    "budget_429_deadlock": Scenario(
        Node("mapreduce", (Node("plan", (_STEP,)),), concurrency=2, on_error="skip"), items=4,
        faults=(("429", 0.5),), retry_after=0.01, max_attempts=4, backoff=0.01, max_calls=3),
    # a lone surrogate and a NUL in replies: stored, shown, and the writer lives on
    "hostile_text": Scenario(Node("chain", (_STEP, _STEP)), faults=(("bad_text", 1.0),)),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_bad_scenarios_keep_every_invariant(name):
    _verdict(KNOWN[name])


@pytest.mark.parametrize("usage_less", [True, False])
def test_known_bad_wire_scenarios_keep_every_invariant(usage_less, hostile_fake):
    """Usage-less streams (llama.cpp's server) under a token budget; invalid UTF-8 bodies."""
    s = Scenario(Node("mapreduce", (Node("step", stream=True),), concurrency=2), world="fake",
                 items=6, faults=(("bad_utf8", 0.3),), max_tokens=100, max_attempts=3,
                 usage_less=usage_less)
    with fake_env(hostile_fake):
        _verdict(s, hostile_fake)


@pytest.fixture(scope="module")
def hostile_fake():
    with fake_provider() as fake:
        yield fake


@settings(max_examples=TOTAL * 3 // 40)
@given(s=scenarios("fake"))
def test_sdk_pipelines_over_a_faulty_wire_keep_every_invariant(s, hostile_fake):
    with fake_env(hostile_fake):
        _verdict(s, hostile_fake)


# No shrinking: each example starts processes (seconds), and the scenarios print anyway.
@settings(max_examples=max(4, TOTAL // 400),
          phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(batches=st.lists(st.lists(scenarios("sim"), min_size=1, max_size=8), min_size=2,
                        max_size=3))
def test_processes_sharing_one_store_lose_no_span(batches, tmp_path_factory):
    """Two or three processes run their scenarios at once on one ORCHNB_HOME; afterwards the
    store holds every span of every run, with the status each process saw."""
    work = tmp_path_factory.mktemp("procs")
    procs = []
    for i, batch in enumerate(batches):
        path = work / f"batch{i}.json"
        path.write_text(json.dumps([s.to_json() for s in batch]))
        procs.append(subprocess.Popen([sys.executable, str(CHILD), str(path), str(work)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=os.environ.copy()))
    deadline = time.monotonic() + 120
    while len(list(work.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    (work / "go").touch()
    limit = 60 + sum(bound_s(s) for batch in batches for s in batch)
    results, broken = [], []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
            broken.append(f"(a) process {p.pid} had not ended after {limit:.0f}s")
        if p.returncode:
            broken.append(f"process exited {p.returncode}: {stderr[-600:]}")
        results += [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    for r in results:
        broken += r["broken"]
        if r["run_id"] and r["done"]:
            broken += _stored_as_traced(r["run_id"], r["spans"])
    assert not broken, ("invariants broken with several processes on one store:\n  "
                        + "\n  ".join(broken[:12])
                        + "\nscenarios per process:\n"
                        + "\n".join(json.dumps([s.to_json() for s in b]) for b in batches))


def _stored_as_traced(run_id: str, spans: list[list[str]]) -> list[str]:
    try:
        get_store().flush()
        df = orchnb.traces(run_id=run_id)
    except Exception as e:
        return [f"(d) reading the store raised {type(e).__name__}: {e}"[:400]]
    stored = sorted(zip(df.span_id, df.status, strict=True))
    traced = sorted(map(tuple, spans))
    if stored == traced:
        return []
    lost = sorted(set(traced) - set(stored))
    return [f"(d) run {run_id}: {len(traced)} spans in its process, {len(stored)} stored; "
            f"missing or different: {lost[:4]}"]
