"""The callgrind figures' arithmetic and the quick run's regression gate (no valgrind needed)."""

from __future__ import annotations

import platform

import pytest

from benchmarks import callgrind

COUNTS = {
    "chain_sync/orchnb": 250_000 * 5 * 10, "chain_sync/langgraph": 1_250_000 * 5 * 10,
    "chain_async/orchnb": 240_000 * 5 * 10, "chain_async/langgraph": 1_200_000 * 5 * 10,
    "router_sync/orchnb": 800_000 * 10, "router_sync/langgraph": 4_000_000 * 10,
    "router_async/orchnb": 700_000 * 10, "router_async/langgraph": 3_500_000 * 10,
    "openai/bare": 7_000_000 * 10, "openai/orchnb": 7_350_000 * 10,
}


def test_summary_has_per_unit_counts_ratios_and_what_orchnb_adds_per_call():
    result = callgrind.summarize(COUNTS, n=10, native_us=60.0, seconds=1.0)
    assert result["per_unit"]["chain_sync/orchnb"] == 250_000  # per step: 5 steps a run
    assert result["per_unit"]["router_sync/orchnb"] == 800_000  # per request
    assert result["ratios"]["chain_sync/orchnb_vs_langgraph"] == pytest.approx(0.2)
    assert result["ratios"]["router_async/orchnb_vs_langgraph"] == pytest.approx(0.2)
    assert result["openai_added_per_call"]["instructions"] == 350_000
    assert result["instructions_per_us"] == 4000  # 240,000 instructions in 60 µs
    assert result["openai_added_per_call"]["us_equivalent"] == pytest.approx(87.5)
    table = callgrind.markdown(result)
    assert "0.200×" in table and "+350,000 instr" in table


def test_a_ratio_that_grew_more_than_20_percent_is_a_regression():
    was = callgrind.summarize(COUNTS, n=10, native_us=60.0, seconds=1.0)
    same = callgrind.summarize({**COUNTS, "chain_sync/orchnb": 290_000 * 50}, 10, 60.0, 1.0)
    worse = callgrind.summarize({**COUNTS, "chain_sync/orchnb": 310_000 * 50}, 10, 60.0, 1.0)
    assert callgrind.regressions(same, was) == []  # +16%: within the tolerance
    (only,) = callgrind.regressions(worse, was)  # +24%
    assert only.startswith("chain_sync/orchnb_vs_langgraph")


def test_dumps_are_read_by_their_label(tmp_path):
    for i, (label, total) in enumerate((("chain_sync/orchnb", 123), ("openai/bare", 456)), 1):
        (tmp_path / f"cg.out.{i}").write_text(
            f"desc: Trigger: Client Request: {label}\nsummary: {total}\ntotals: {total}\n")
    (tmp_path / "cg.out").write_text("desc: Trigger: Program termination\nsummary: 1\n")
    assert callgrind._read_dumps(tmp_path / "cg.out") == {"chain_sync/orchnb": 123,
                                                          "openai/bare": 456}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the client request is x86-64 code")
def test_client_requests_do_nothing_outside_valgrind():
    vg = callgrind._Valgrind()
    assert not vg.running
    ran = []
    vg.measure("x", ran.append, 10)  # warm-up, two uncounted, the counted batch: no crash
    assert ran == [5, 2, 10]
