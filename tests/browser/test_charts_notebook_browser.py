"""The executed charts notebook, opened in JupyterLab, shows every figure (issue: charts)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]


def test_executed_charts_notebook_shows_its_figures(lab, browser_context, tmp_path, monkeypatch):
    import nbformat

    sys.path.insert(0, str(ROOT / "scripts"))
    from run_notebook import run

    monkeypatch.setenv("ORCHNB_HOME", str(tmp_path / "home"))
    executed = run(ROOT / "notebooks" / "charts.ipynb", lab["root"], timeout=300)
    nb = nbformat.read(executed, as_version=4)
    figures = sum(1 for c in nb.cells for o in c.get("outputs", [])
                  if "application/vnd.plotly.v1+json" in o.get("data", {}))
    assert figures >= 12

    page = browser_context.new_page()
    # its own workspace: the default one is restored by the playground tests' page
    page.goto(f"{lab['url']}/lab/workspaces/charts/tree/{executed.name}?token={lab['token']}")
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {figures}",
        timeout=60_000)
    drawn = page.locator(".jp-OutputArea-output.js-plotly-plot")
    assert drawn.count() == figures
    artifacts = ROOT / "tests" / "artifacts" / "charts"
    artifacts.mkdir(parents=True, exist_ok=True)
    drawn.nth(0).screenshot(path=str(artifacts / "timeline-in-jupyterlab.png"))
    page.close()
