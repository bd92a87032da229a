"""Every notebook in notebooks/ runs top to bottom offline (sim: models)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path, tmp_path, monkeypatch):
    import nbformat
    from run_notebook import run

    monkeypatch.chdir(tmp_path)
    executed = run(path, tmp_path / "out", timeout=300)
    nb = nbformat.read(executed, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert executed.with_suffix(".html").stat().st_size > 10_000
