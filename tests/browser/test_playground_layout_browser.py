"""The playground's layout in a narrow JupyterLab: nothing clipped.

A wide graph (a router whose routes are nested patterns) must not be cut at the graph pane's
right edge, and a paused run's input of two lines must show both lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _jupyter import open_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "playground"

WIDE = '''\
import orchnb
from orchnb import Agent, Chain, MapReduce, Router, SimModel, Step

SimModel("kw", rules={"refund": "billing", "crash": "technical"}, default="research").register()
SimModel("calc", fn=Agent.sim_policy([("add", {"a": 2, "b": 3})], "Done: {observation}")
         ).register()

def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

wide = Router("wide", classifier=Step("classify", "sim:kw", "{{ input }}"), routes={
    "billing": Step("bill", "sim:echo", "Billing: {{ input }}"),
    "technical": Chain("tech", [Step("diagnose", "sim:echo", "D: {{ input }}"),
                                Step("reply", "sim:echo", "R: {{ input }}")]),
    "research": Agent("researcher", "sim:calc", tools=[add], max_iterations=4),
}, default="research")
pg = orchnb.Playground(wide, input="my app crashes every time I open the settings page after "
                                   "the last update, and the refund form does not load either")
pg
'''

OVERFLOW = """(name) => {
  const el = document.querySelector(`.orchnb-pg[data-pipeline='${name}']`);
  const graph = el.querySelector(".opg-graph"), input = el.querySelector(".opg-input");
  const svg = graph.querySelector("svg").getBoundingClientRect();
  const box = graph.getBoundingClientRect();
  const line = parseFloat(getComputedStyle(input).lineHeight);
  return {graphClipped: graph.scrollWidth > graph.clientWidth + 1 || svg.right > box.right + 1,
          inputClipped: input.scrollHeight > input.clientHeight + 2,
          inputLines: Math.floor((input.clientHeight - 8) / line),
          status: el.dataset.status};
}"""


def test_wide_graph_and_two_line_input_are_not_clipped_while_paused(lab, browser_context):
    page = open_notebook(lab, browser_context, "playground_layout_test.ipynb", [WIDE],
                         workspace="layout")
    page.set_viewport_size({"width": 1000, "height": 1400})
    widget = page.locator(".orchnb-pg[data-pipeline='wide']")
    widget.wait_for(timeout=60_000)
    page.wait_for_timeout(300)
    before = page.evaluate(OVERFLOW, "wide")
    assert not before["graphClipped"], before
    assert not before["inputClipped"], before
    widget.locator(".opg-step").click()  # paused at the first call: the toolbar changes
    page.wait_for_function(
        "document.querySelector(\".orchnb-pg[data-pipeline='wide']\").dataset.status"
        " === 'paused'", timeout=20_000)
    page.wait_for_timeout(300)
    paused = page.evaluate(OVERFLOW, "wide")
    assert not paused["graphClipped"], paused
    assert not paused["inputClipped"] and paused["inputLines"] >= 2, paused
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(ARTIFACTS / "06-wide-router-paused-narrow.png"))
    page.close()
