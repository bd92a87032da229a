"""The playground in Jupyter Notebook 7 (not only JupyterLab): renders, steps, runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from _jupyter import open_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CELLS = [
    "import orchnb\n"
    "orchnb.SimModel('nb7', fn=lambda r: 'done: ' + r.messages[-1].content, latency=0.05)"
    ".register()\n"
    "pipe = orchnb.Chain('nb7chain', [orchnb.Step('first', 'sim:nb7', '{{ input }}'),\n"
    "                                  orchnb.Step('second', 'sim:nb7', '{{ input }}')],"
    " cache=False)\n"
    "pg = orchnb.Playground(pipe)\npg",
]


def test_playground_steps_and_runs_in_notebook7(notebook7, browser_context):
    page = open_notebook(notebook7, browser_context, "pg7.ipynb", CELLS)
    widget = page.locator(".orchnb-pg[data-pipeline='nb7chain']")
    widget.wait_for(timeout=60_000)
    widget.locator("button.opg-step").click()
    nxt = widget.locator(".opg-node.opg-next")
    nxt.wait_for(timeout=30_000)
    assert nxt.get_attribute("data-key") == "nb7chain/first"
    widget.locator("button.opg-run").click()
    page.wait_for_function(
        """() => document.querySelector(".orchnb-pg[data-pipeline='nb7chain']")
                   .dataset.status === "ok" """, timeout=30_000)
    assert widget.locator(".opg-final").inner_text() == "done: done: "
    artifacts = Path(__file__).resolve().parents[1] / "artifacts" / "playground"
    artifacts.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(artifacts / "notebook7-chain-done.png"))
    page.close()
