"""A soak in CI: both SDKs over loopback at 20% faults of every kind, then a 429 storm.

The larger run is ``python -m benchmarks.soak`` (5,000 items and a 9 s storm).
"""

from __future__ import annotations

import pytest

import orchnb

soak = pytest.importorskip("benchmarks.soak", reason="run from the repository root")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _quiet():
    before = orchnb.engine.defaults()
    orchnb.configure(progress=False)
    yield
    orchnb.engine._config._DEFAULTS[0] = before


def test_soak_at_20_percent_mixed_faults_loses_nothing_and_never_retries_early():
    r = soak.mixed_faults(120, 0.2, concurrency=30, timeout=3.0, retry_after=0.1)
    assert r["run_status"] == "ok"
    assert r["items_lost"] == 0
    assert r["spans_lost"] == 0 and r["spans_in_store"] == r["spans_in_run"]
    assert r["early_retries"] == 0 and r["retries_after_retry_after"] > 0
    # Every attempt is in the trace: as many as the server saw (an attempt the server never
    # read, e.g. one timed out on a loaded machine, would make it larger, never smaller).
    assert r["attempts_recorded"] >= r["requests"]
    assert r["failed_attempts_in_meta_plus_ok"] == r["attempts_recorded"]
    assert set(r["faults_served"]) >= {"429", "500", "503", "malformed", "drop"}


def test_a_429_storm_is_met_with_spread_out_retries_no_earlier_than_retry_after():
    r = soak.storm(3.0, items=30, retry_after=1.0)
    assert r["items_lost"] == 0
    assert r["early_retries"] == 0
    # Jittered: 30 calls retrying after the same Retry-After do not come back in one wave.
    assert r["peak_retries_in_100ms"] < 20
