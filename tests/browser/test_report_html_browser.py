"""``report.to_html(path)`` opens offline in Chromium with its Plotly charts drawn.

An eval report, a comparison (experiment) and a router report are each written to a file and
opened from ``file://`` with every network request refused and recorded: plotly.js is inline,
so each chart draws (its ``.main-svg`` appears) and nothing but the file itself is requested.
"""

from __future__ import annotations

import pandas as pd
import pytest

import orchnb

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROWS = pd.DataFrame({"text": [f"q{i}" for i in range(12)], "answer": ["a", "b"] * 6,
                     "label": ["billing", "technical"] * 6})


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The HTML files, written before the browser starts (Playwright's sync API leaves an
    event loop marked running in this thread while it lives)."""
    base = tmp_path_factory.mktemp("report-html")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHNB_HOME", str(base / "home"))
        orchnb.SimModel("html-a", fn=lambda r: "a", priced_as="openai:gpt-4o-mini").register()
        orchnb.SimModel("html-kw", fn=lambda r: "billing" if int(
            r.messages[-1].content[1:]) % 2 == 0 else "technical").register()
        good = orchnb.Chain("good", [orchnb.FunctionStep("say", lambda x: "ab"[int(x[1:]) % 2])])
        lazy = orchnb.Chain("lazy", [orchnb.Step("s", "sim:html-a", "{{ input }}")])
        router = orchnb.Router("triage", orchnb.Step("c", "sim:html-kw", "{{ input }}"),
                               {"billing": good, "technical": lazy})
        reports = {
            "eval": orchnb.evaluate(lazy, ROWS, expected="answer", progress=False),
            "compare": orchnb.compare([good, lazy], ROWS, expected="answer", progress=False,
                                      save=False),
            "router": orchnb.evaluate(router, ROWS, label="label", progress=False),
        }
        return {k: (r.to_html(base / f"{k}.html"), len(r.charts())) for k, r in reports.items()}


@pytest.mark.parametrize("kind", ["eval", "compare", "router"])
def test_report_html_opens_offline_with_its_charts_drawn(pages, browser_context, kind):
    path, charts = pages[kind]
    requested: list[str] = []
    page = browser_context.new_page()
    page.on("request", lambda req: requested.append(req.url))

    def refuse(route):  # any request off this file is a failure: refuse it, keep its URL
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", refuse)
    page.goto(path.as_uri())
    drawn = page.locator(".plotly-graph-div .main-svg")
    drawn.first.wait_for(timeout=30_000)
    page.wait_for_function(
        "n => [...document.querySelectorAll('.plotly-graph-div')].filter("
        "d => d.querySelector('.main-svg')).length >= n", arg=charts, timeout=30_000)
    assert page.locator(".plotly-graph-div").count() == charts >= 1
    assert [u for u in requested if not u.startswith(("file://", "data:", "blob:"))] == []
    body = page.inner_text("body")
    assert {"eval": "Eval · lazy", "compare": "Decision:", "router": "Router eval"}[kind] in body
    page.close()
