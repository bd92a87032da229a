"""Screenshots of notebooks opened in JupyterLab through Chromium.

    PYTHONPATH=<checkout> python docs/screenshots/notebooks/take.py EXECUTED_DIR OUT_DIR [name ...]

EXECUTED_DIR holds the copies written by scripts/run_notebook.py; the notebooks in LIVE are
instead run in the browser from notebooks/ (their widgets only draw from a live kernel). The
cells shot are listed in SHOTS (0-based cell index); the left sidebar is collapsed. Each shot is the
cell clipped to 1000 x 1100 px; its full height is printed so a clipped shot says so.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # _lab.py, which puts tests/browser on the path

SHOTS = {
    "cost_levers": [6, 7, 16, 18],
    "labels": [3, 5, 13, 19],
    "evals": [9, 13, 16, 25],
    "routing": [7, 8, 11, 19],
}
LIVE = {"cost_levers", "labels"}


def _shoot(page, name: str, index: int, out: Path) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    height = cell.evaluate("e => e.scrollHeight")
    box = cell.bounding_box()
    page.locator(".jp-Notebook").evaluate(
        "(e, top) => { e.scrollTop += top - e.getBoundingClientRect().top - 8; }", box["y"])
    time.sleep(0.6)
    box = cell.bounding_box()
    path = out / f"{name}_{index:02d}.png"
    page.screenshot(path=str(path), clip={"x": box["x"], "y": box["y"],
                                          "width": min(box["width"], 1000),
                                          "height": min(box["height"], 1100)})
    print(f"{path.name}: cell {index} is {height} px tall, {path.stat().st_size // 1024} KB")


def _run_all(page) -> None:
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
          return w && w.sessionContext && w.sessionContext.session
            && w.sessionContext.session.kernel
            && w.sessionContext.session.kernel.connectionStatus === "connected"; }""",
        timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
          return w.sessionContext.session.kernel.status === "idle"
            && ![...document.querySelectorAll('.jp-InputArea-prompt')]
                 .some(p => p.textContent.includes('[*]')); }""", timeout=300_000)


def main() -> None:
    from _lab import lab_browser

    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    only = sys.argv[3:] or list(SHOTS)
    with lab_browser() as (lab, context):
        for name in only:
            origin = (HERE.parents[2] / "notebooks") if name in LIVE else src
            shutil.copy(origin / f"{name}.ipynb", lab["root"] / f"{name}.ipynb")
            page = context.new_page()
            page.goto(f"{lab['url']}/lab/workspaces/{name}/tree/{name}.ipynb"
                      f"?token={lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
            if name in LIVE:
                _run_all(page)
            time.sleep(6)  # outputs, widgets and Plotly draw after the page loads
            for i in SHOTS[name]:
                _shoot(page, name, i, out)
            page.close()


if __name__ == "__main__":
    main()
