"""``python -m benchmarks --quick`` runs end to end and writes every scenario (not timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_benchmark_writes_every_scenario(tmp_path):
    from benchmarks.__main__ import expected

    out = tmp_path / "quick.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    machine = report["machine"]
    assert machine["cpu"] and machine["cores"] and machine["python"]
    assert machine["packages"]["orchnb"] and machine["packages"]["langgraph"]
    names = {sc["name"]: sc for sc in report["scenarios"]}
    for group, wanted in expected(quick=True).items():
        for name in wanted:
            assert name in names, f"{group}: scenario {name} missing"
            sc = names[name]
            assert not sc.get("error"), f"{name} failed: {sc['error']}"
            if not sc.get("skipped"):
                assert sc["results"], f"{name} has no results"
                assert all(r["samples"] for r in sc["results"])
    assert out.with_suffix(".md").read_text().count("|") > 20
    assert "chain_sync" in proc.stdout  # the table
