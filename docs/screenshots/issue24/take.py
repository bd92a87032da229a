# ruff: noqa: E501  (the cells are notebook code, kept as a person would type them)
"""Screenshots of issue 24's items 1, 2, 6, 7, 8 and 10 in JupyterLab through Chromium.

    PYTHONPATH=<checkout> python docs/screenshots/issue24/take.py <checkout> before|after

Each item is a small notebook run in a JupyterLab started the way tests/browser starts it (its
own config, settings and ORCHNB_HOME); the kernel imports orchnb from ``<checkout>``. Prints
each output's full height (a clipped shot of a very tall output says so).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # _lab.py, which puts tests/browser on the path

SETUP = "%load_ext orchnb\nimport os, orchnb"
MAX_HEIGHT = {"item02": 800}  # px of one shot (else 1100); taller outputs are clipped
# (their height is printed)

ITEMS: dict[str, list[str]] = {
    # 1: a finished map-reduce's run table
    "item01": [SETUP,
               'orchnb.sim_model("noter", fn=lambda r: "noted", latency=(0.0, 0.001))\n'
               'big = orchnb.MapReduce("big", orchnb.Step("note", "sim:noter", "Note: {{ input }}"),\n'
               '                       orchnb.Step("join", "sim:echo", "Join: {{ input }}"))\n'
               'run = big([f"item {i}" for i in range(300)])\nrun'],
    # 2: a provider error (a refused connection)
    "item02": [SETUP + '\nos.environ["OPENAI_API_KEY"] = "sk-test"\n'
                       'os.environ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # nothing listens',
               'ask = orchnb.Chain("ask", [orchnb.Step("answer", "openai:gpt-4o-mini",\n'
               '                                       "Answer: {{ input }}")])\nask("hello")'],
    # 6: an interrupted map-reduce (an older `run` exists; `res` is never assigned)
    "item06": [SETUP,
               'run = orchnb.Chain("old", [orchnb.Step("s", "sim:echo", "{{ input }}")])("x")\n'
               'orchnb.sim_model("slow", fn=lambda r: "noted", latency=(0.02, 0.03))\n'
               'big = orchnb.MapReduce("big", orchnb.Step("note", "sim:slow", "Note: {{ input }}"),\n'
               '                       orchnb.Step("join", "sim:echo", "Join: {{ input }}"))',
               'res = big([f"item {i}" for i in range(3000)])'],
    # 7: an unpriced model (a fine-tune name on a fake OpenAI server)
    "item07": [SETUP + '\nfrom orchnb.testing import FakeProvider\n'
                       'fake = FakeProvider(latency=0.0).__enter__()\nos.environ.update(fake.env())',
               'pipe = orchnb.Chain("tuned", [orchnb.Step("answer", "openai:acme-support-ft",\n'
               '                                          "Answer: {{ input }}")])\n'
               'run = pipe("my invoice is wrong")\nrun'],
    # 8: the playground notebook's TraceView demo
    "item08": [SETUP + '\nbrief = orchnb.Chain("brief", [orchnb.Step("s", "sim:echo", "S: {{ input }}")])',
               "view = orchnb.TraceView()\nview",
               'brief("Forgot my password")\nbrief("Where is my invoice?")\n'
               "view.{stop}()   # stop following runs (the table stays)"],
    # 10: YAML syntax errors
    "item10": [SETUP,
               "%%orch bad\npattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n"
               '     prompt: "Hi {{ input }}"',
               "%%orch tabbed\npattern: chain\nsteps:\n  - name: a\n\tmodel: sim:echo\n"],
}
SHOT = {"item01": [1], "item02": [1], "item06": [2], "item07": [1], "item08": [1],
        "item10": [1, 2]}
"""Which cells (0-based) go into each item's screenshot."""


def _cells(item: str, variant: str) -> list[str]:
    stop = "close" if variant == "before" else "stop"  # what each version's demo calls
    return [c.replace("{stop}", stop) for c in ITEMS[item]]


def _wait_idle(page, timeout: float = 120) -> None:
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
          return w.sessionContext.session.kernel.status === "idle"
            && !document.querySelector('.jp-InputArea-prompt:not(:empty)')
                  ?.textContent.includes('[*]'); }""", timeout=timeout * 1000)


def _shot(page, item: str, variant: str) -> None:
    cells = page.locator(".jp-Notebook .jp-Cell")
    boxes = []
    for i in SHOT[item]:
        cell = cells.nth(i)
        cell.scroll_into_view_if_needed()
        height = cell.evaluate("e => e.scrollHeight")
        print(f"{item} {variant}: cell {i} is {height} px tall")
        boxes.append(cell.bounding_box())
    page.locator(".jp-Notebook").evaluate(
        "(e, top) => { e.scrollTop += top - e.getBoundingClientRect().top - 8; }",
        boxes[0]["y"])
    time.sleep(0.5)
    first, last = cells.nth(SHOT[item][0]).bounding_box(), cells.nth(SHOT[item][-1]).bounding_box()
    height = min(last["y"] + last["height"] - first["y"], MAX_HEIGHT.get(item, 1100))
    out = HERE / f"{item}_{variant}.png"
    page.screenshot(path=str(out), clip={"x": first["x"], "y": first["y"],
                                         "width": min(first["width"], 1000), "height": height})
    print(f"  -> {out.name} {out.stat().st_size // 1024} KB")


def _run_item(lab, context, item: str, variant: str) -> None:
    from _jupyter import open_notebook

    interrupt = item == "item06"
    page = open_notebook(lab, context, f"{item}.ipynb", _cells(item, variant),
                         workspace=item, wait=not interrupt)
    if interrupt:
        time.sleep(6)  # the map-reduce is under way
        page.evaluate("() => window.jupyterapp.commands.execute('kernelmenu:interrupt')")
    _wait_idle(page)
    for i in SHOT[item]:  # run-all stops at the first error: run the cells it left
        cell = page.locator(".jp-Notebook .jp-Cell").nth(i)
        if cell.locator(".jp-InputArea-prompt").inner_text().strip() in ("[ ]:", ""):
            cell.locator(".jp-InputArea-prompt").click()
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
            _wait_idle(page)
    time.sleep(2)  # widgets and Plotly draw after the kernel goes idle
    _shot(page, item, variant)
    page.close()


def main() -> None:
    from _lab import lab_browser

    checkout, variant = Path(sys.argv[1]).resolve(), sys.argv[2]
    os.environ["PYTHONPATH"] = str(checkout)
    only = sys.argv[3:] or list(ITEMS)
    with lab_browser() as (lab, context):
        for item in only:
            _run_item(lab, context, item, variant)


if __name__ == "__main__":
    main()
