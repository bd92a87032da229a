"""HTML outputs in JupyterLab are not typeset by MathJax: "$0.0030 (… $0.0030)" stays money.

JupyterLab typesets ``$…$`` inside every ``text/html`` output; orchnb's HTML opts out with the
``tex2jax_ignore mathjax_ignore`` classes. A control output with real TeX proves MathJax ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _jupyter import open_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "evals"

SETUP = '''\
import re
import pandas as pd
import orchnb
from IPython.display import HTML, display

RULES = [("refund|charge|invoice", "billing"), ("crash|error|app", "technical")]

def answer(request):
    text = request.messages[-1].content.split("Message:", 1)[-1]
    return next((label for p, label in RULES if re.search(p, text, re.I)), "no idea")

orchnb.SimModel("kw", fn=answer, priced_as="openai:gpt-4o-mini").register()
triage = orchnb.Router("triage", classifier=orchnb.Step(
    "classify", "sim:kw", "Labels: {{ labels | join(', ') }}. Message: {{ input }}"),
    routes={"billing": orchnb.Step("bill", "sim:echo", "{{ input }}"),
            "technical": orchnb.Step("tech", "sim:echo", "{{ input }}"),
            "other": orchnb.Step("other", "sim:echo", "{{ input }}")}, default="other")
data = pd.DataFrame({"text": ["refund my invoice", "the app crashes", "hello there",
                              "charge twice", "error 500", "where is it"] * 5,
                     "label": ["billing", "technical", "other",
                               "billing", "technical", "billing"] * 5})
'''

CELLS = [
    SETUP,
    'report = orchnb.evaluate(triage, data, progress=False)\nreport',
    'display(HTML("<div class=\'math-control\'>control: $a^2 + b^2$</div>"))',
    'report.estimate',
    'orchnb.viz.summary_table(orchnb.traces())',
    'orchnb.viz.cost(orchnb.traces(), by="model")',
]


def test_eval_report_money_is_not_typeset_as_math(lab, browser_context):
    page = open_notebook(lab, browser_context, "eval_report_test.ipynb", CELLS,
                         workspace="evals")
    # MathJax typesets the control (so it did run over this notebook's outputs) ...
    page.wait_for_selector(".math-control mjx-container, .math-control .MathJax",
                           timeout=60_000)
    report = page.locator(".jp-OutputArea-output", has_text="Router eval")
    report.wait_for(timeout=60_000)
    page.locator(".jp-OutputArea-output", has_text="cost estimate").wait_for(timeout=30_000)
    page.locator(".jp-OutputArea-output", has_text="orchnb summary by run").wait_for(
        timeout=30_000)
    page.wait_for_timeout(500)  # one more typesetting pass, had there been anything to typeset
    # ... and leaves orchnb's outputs alone: the amounts read as written
    for text in ("Router eval", "cost estimate", "orchnb summary by run"):
        out = page.locator(".jp-OutputArea-output", has_text=text)
        assert out.locator("mjx-container, .MathJax, .MathJax_Preview").count() == 0, text
        assert "$0.00" in out.inner_text(), text
    body = report.inner_text()
    assert "priced as openai:gpt-4o-mini: $0.00" in body
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report.screenshot(path=str(ARTIFACTS / "eval-report-in-jupyterlab.png"))
    # the cost axis reads in dollars, not Plotly's SI prefixes ("$100µ")
    chart = page.locator(".jp-OutputArea-output.js-plotly-plot")
    chart.locator(".main-svg").first.wait_for(timeout=30_000)
    ticks = chart.locator(".xtick text").evaluate_all("els => els.map((e) => e.textContent)")
    assert ticks and all(t.startswith("$") for t in ticks), ticks
    assert not any(c in t for t in ticks for c in "µmkunp"), ticks
    chart.screenshot(path=str(ARTIFACTS / "cost-by-model-in-jupyterlab.png"))
    page.close()
