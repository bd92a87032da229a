"""The simulation test: random pipelines under random faults, budgets and retry policies, each
run checked against the invariants of ``_checks.py`` (FoundationDB-style simulation, Jepsen-style
checkers). A failure prints the scenario as JSON: replay it with ``replay(json)`` below, or the
whole search with ``--hypothesis-seed=N`` (printed too). docs/reliability.md has the details.
"""

from __future__ import annotations

import pytest
from _checks import check_all
from _strategies import scenarios
from _world import Scenario, fake_env, fake_provider, play
from hypothesis import given, settings

TOTAL = settings.default.max_examples
"""The profile's scenario count (ci: 2,000; soak: 50,000), shared out below."""


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


@settings(max_examples=TOTAL * 9 // 10)
@given(s=scenarios("sim"))
def test_sim_pipelines_keep_every_invariant(s):
    _verdict(s)


@pytest.fixture(scope="module")
def hostile_fake():
    with fake_provider() as fake:
        yield fake


@settings(max_examples=TOTAL // 10)
@given(s=scenarios("fake"))
def test_sdk_pipelines_over_a_faulty_wire_keep_every_invariant(s, hostile_fake):
    with fake_env(hostile_fake):
        _verdict(s, hostile_fake)
