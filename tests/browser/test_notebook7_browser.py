"""The playground in Jupyter Notebook 7 (not only JupyterLab): renders, steps, runs."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_playground_steps_and_runs_in_notebook7(notebook7, browser_context, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, notebook7["root"] / "pg7.ipynb")
    page = browser_context.new_page()
    page.goto(f"{notebook7['url']}/notebooks/pg7.ipynb?token={notebook7['token']}")
    page.wait_for_function(
        """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
          return w && w.sessionContext && w.sessionContext.session
            && w.sessionContext.session.kernel
            && w.sessionContext.session.kernel.connectionStatus === "connected"; }""",
        timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
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
