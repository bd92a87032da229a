"""The labelling widget in a real browser: 20 rows labelled with the keyboard in JupyterLab (a
note and a tag typed too), the kernel restarted, the cell re-run: the labels are back and the
notes grouped into categories; in Notebook 7 it renders and takes a keypress."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from _jupyter import open_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "labels"

SETUP = (
    "import orchnb, pandas as pd\n"
    "rows = pd.DataFrame({'input': [f'question {i}' for i in range(25)],\n"
    "                     'output': [f'answer {i}' for i in range(25)]})\n"
    "w = orchnb.label(rows, n=20, sample='all', name='{name}')\nw"
)


def _stored(server: dict, name: str) -> int:
    path = Path(server["root"]).parent / "orchnb-home" / "labels.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM labels WHERE project = ?", (name,)).fetchone()[0]


def _wait_stored(server: dict, name: str, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _stored(server, name) < n:
        assert time.monotonic() < deadline, f"{_stored(server, name)} labels stored, not {n}"
        time.sleep(0.1)


def _done(widget) -> int:
    return int(widget.locator(".olb-count").get_attribute("data-done"))


def test_label_20_rows_by_keyboard_restart_and_they_are_back(lab, browser_context):
    cells = [SETUP.replace("{name}", "lab"), "w.categories()"]
    page = open_notebook(lab, browser_context, "labels.ipynb", cells, workspace="labels")
    widget = page.locator(".orchnb-lb")
    widget.wait_for(timeout=60_000)
    widget.locator(".olb-head").click()
    kb = page.keyboard
    for i in range(20):
        if i in (3, 7):  # a note, typed in its box (n), then back to the keys (Escape)
            kb.press("n")
            kb.type("too long" if i == 3 else "far too long")
            kb.press("Escape")
        if i == 11:
            kb.press("t")
            kb.type("tone")
            kb.press("Escape")
        kb.press("2" if i in (3, 7, 11) else "1")
    page.wait_for_function("() => document.querySelector('.orchnb-lb .olb-count')"
                           ".dataset.done === '20'", timeout=20_000)
    assert "row 20 of 20" in widget.locator(".olb-head").inner_text()  # stays on the last
    kb.press("k")
    assert "row 19 of 20" in widget.locator(".olb-head").inner_text()
    _wait_stored(lab, "lab", 20)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(ARTIFACTS / "label-widget-jupyterlab.png"))

    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session"
                  ".kernel.restart()")
    page.wait_for_function(
        """() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                   return k.status === "idle" && k.connectionStatus === "connected"; }""",
        timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    cats = page.locator(".jp-OutputArea-output", has_text="examples")
    cats.wait_for(timeout=60_000)
    widget = page.locator(".orchnb-lb")
    widget.wait_for(timeout=30_000)
    assert _done(widget) == 20
    text = cats.inner_text()
    assert "long" in text and "tone" in text  # two notes in one category, the tag in another
    widget.locator(".olb-head").click()
    for _ in range(3):
        kb.press("j")
    # The row's stored label and note arrive from the kernel after the key press: wait for them.
    page.wait_for_function("() => document.querySelector('.orchnb-lb .olb-note').value"
                           " === 'too long'", timeout=15_000)
    assert widget.locator(".olb-given").inner_text() == "labelled: fail"
    page.close()


def test_label_widget_renders_and_takes_a_key_in_notebook7(notebook7, browser_context):
    page = open_notebook(notebook7, browser_context, "labels7.ipynb",
                         [SETUP.replace("{name}", "nb7")])
    widget = page.locator(".orchnb-lb")
    widget.wait_for(timeout=60_000)
    widget.locator(".olb-head").click()
    page.keyboard.press("2")
    page.wait_for_function("() => document.querySelector('.orchnb-lb .olb-count')"
                           ".dataset.done === '1'", timeout=20_000)
    assert "row 2 of 20" in widget.locator(".olb-head").inner_text()
    _wait_stored(notebook7, "nb7", 1)
    page.close()
