"""Every HTML output orchnb produces opts out of MathJax: JupyterLab typesets ``$…$`` inside
``text/html`` outputs, which turned "$0.0030 (classifier … $0.0030)" into italic math."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import orchnb

NO_MATH = {"tex2jax_ignore", "mathjax_ignore"}
ROOT = Path(orchnb.__file__).parent

# HTML producers by module; a new one must be added here (and opt out) or the scan test fails.
PRODUCERS = {
    "evals/_report.py": "EvalReport._repr_html_",
    "evals/_candidates.py": "Comparison._repr_html_",
    "evals/_costs.py": "CostEstimate._repr_html_",
    "notebook/_playground.py": "Playground text/html",
    "notebook/_traceview.py": "TraceView text/html",
    "notebook/_static.py": "StaticFallback text/html (the widgets above and the label widget)",
    "engine/_run.py": "Run._repr_html_",
    "engine/_replay.py": "ReplayReport._repr_html_",
    "patterns/_base.py": "Pipeline._repr_html_",
    "patterns/_preview_view.py": "Preview._repr_html_",
    "evals/_scores_report.py": "ScoreReport._repr_html_",
    "evals/_compare.py": "Experiment._repr_html_",
    "evals/_routing_ladder.py": "LadderReport._repr_html_",
    "evals/_routing_report.py": "RoutingReport._repr_html_",
    "evals/_agreement.py": "Agreement._repr_html_",
    "evals/_align.py": "Alignment._repr_html_",
    "notebook/_label.py": "LabelWidget text/html",
    "evals/_export.py": "the to_html mixin (its _repr_html_ is abstract: the reports' own above)",
}


class _Roots(HTMLParser):
    """The top-level elements of an HTML fragment: (tag, classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.roots = 0, []

    def handle_starttag(self, tag, attrs):
        if self.depth == 0:
            self.roots.append((tag, set((dict(attrs).get("class") or "").split())))
        if tag not in ("br", "img", "input", "meta", "hr", "col", "wbr"):
            self.depth += 1

    def handle_endtag(self, tag):
        self.depth -= 1


def assert_opts_out(html: str) -> None:
    parser = _Roots()
    parser.feed(html)
    roots = [(tag, cls) for tag, cls in parser.roots if tag != "style"]
    assert roots, html[:200]
    for tag, cls in roots:
        assert cls >= NO_MATH, f"<{tag} class='{' '.join(sorted(cls))}'> in {html[:160]!r}"


def _router(name: str, priced_as: str = "openai:gpt-4o-mini") -> orchnb.Router:
    def answer(request):
        text = request.messages[-1].content.lower()
        return "billing" if "refund" in text or "invoice" in text else "other"

    orchnb.SimModel(f"html-{name}", fn=answer, priced_as=priced_as).register()
    return orchnb.Router(name, classifier=orchnb.Step("classify", f"sim:html-{name}",
                                                      "{{ input }}"),
                         routes={"billing": orchnb.Step("bill", "sim:echo", "{{ input }}"),
                                 "other": orchnb.Step("other", "sim:echo", "{{ input }}")},
                         default="other")


DATA = pd.DataFrame({"text": ["refund me", "invoice please", "hello", "hi"],
                     "label": ["billing", "billing", "other", "billing"]})


def test_eval_report_estimate_and_comparison_opt_out_of_mathjax():
    report = orchnb.evaluate(_router("a"), DATA, progress=False)
    html = report._repr_html_()
    assert html.count("$") >= 2  # the case that went wrong: two amounts in one run of text
    assert_opts_out(html)
    assert_opts_out(report.estimate._repr_html_())
    cmp = orchnb.compare_routers({"a": _router("a"), "b": _router("b", "openai:gpt-4o")}, DATA,
                                 progress=False)
    assert_opts_out(cmp._repr_html_())


def test_pipeline_eval_and_experiment_opt_out_of_mathjax():
    chain = orchnb.Chain("c", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    other = orchnb.Chain("d", [orchnb.Step("s", "sim:echo", "x {{ input }}")])
    data = pd.DataFrame({"text": ["a", "b", "c"], "expected": ["a", "b", "x c"]})
    report = orchnb.evaluate(chain, data, expected="expected", scorers=["exact"], progress=False)
    assert_opts_out(report._repr_html_())
    experiment = orchnb.compare([chain, other], data, expected="expected", scorers=["exact"],
                                progress=False)
    assert_opts_out(experiment._repr_html_())


def test_summary_table_opts_out_of_mathjax():
    pipe = orchnb.Chain("c", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    pipe("x")
    assert_opts_out(orchnb.viz.summary_table(orchnb.traces()).to_html())
    assert_opts_out(orchnb.viz.summary_table(orchnb.traces(), by="pipeline").to_html())


def test_playground_and_trace_view_static_html_opt_out_of_mathjax():
    pipe = orchnb.Chain("c", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    view = orchnb.TraceView(pipe("x"))
    assert view.rows
    assert_opts_out(view.static_html())
    pg = orchnb.Playground(pipe, input="x")
    assert_opts_out(pg.static_html())
    bundle = pg._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert_opts_out(data["text/html"])


@pytest.mark.parametrize("which", ["run", "pipeline", "preview"])
def test_run_pipeline_and_preview_html_opt_out_of_mathjax(which):
    pipe = orchnb.Chain("c", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    made = {"run": lambda: pipe("x"), "pipeline": lambda: pipe,
            "preview": lambda: pipe.preview("x")}
    assert_opts_out(made[which]()._repr_html_())


def test_replay_report_html_opts_out_of_mathjax():
    pipe = orchnb.Chain("c", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    run = pipe("x")
    assert_opts_out(run.replay()._repr_html_())
    pipe.steps[0].prompt = orchnb.Prompt("$1 {{ input }}")
    assert_opts_out(run.replay()._repr_html_())


def test_agreement_alignment_and_label_widget_html_opt_out_of_mathjax():
    from orchnb.evals._align import Alignment

    a = orchnb.agreement([0.9, 0.1, 0.8, 0.2], ["pass", "fail", "fail", "pass"], n_boot=20,
                         rows=pd.DataFrame({"input": ["$1 a", "b", "$2 c", "d"],
                                            "output": list("wxyz")}))
    assert_opts_out(a._repr_html_())
    j = orchnb.judge("sim:echo", "ok")
    assert_opts_out(Alignment(a, a, j, j, False, 1.0)._repr_html_())
    w = orchnb.label(pd.DataFrame({"input": ["$1 a"], "output": ["$2 b"]}))
    bundle = w._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert_opts_out(data["text/html"])


def test_every_html_producer_is_covered_by_these_tests():
    found = set()
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        if re.search(r"def _repr_html_|[\"']text/html[\"']", text):
            found.add(path.relative_to(ROOT).as_posix())
    assert found <= set(PRODUCERS), f"new HTML producers: {sorted(found - set(PRODUCERS))}"


def test_ladder_report_html_opts_out_of_mathjax():
    import numpy as np
    import pandas as pd

    kind = np.arange(6) % 3
    df = pd.DataFrame({"text": [f"q{i} costs $1" for i in range(6)], "cheap": (kind == 0) * 1,
                       "mid": (kind < 2) * 1, "dear": np.ones(6, dtype=int)})
    pred = df[["cheap", "mid", "dear"]].to_numpy(float)
    report = orchnb.evaluate_routing(pred, df, scores=["cheap", "mid", "dear"],
                                     costs=[0.001, 0.004, 0.01], threshold=0.0, bootstrap=0)
    assert_opts_out(report._repr_html_())


def test_routing_report_html_opts_out_of_mathjax():
    import pandas as pd

    df = pd.DataFrame({"text": list("abcd"), "weak_score": [0, 1, 0, 1],
                       "strong_score": [1, 1, 1, 0], "s": [0.9, 0.7, 0.4, 0.1]})
    report = orchnb.evaluate_routing("s", df, weak_cost=0.001, strong_cost=0.01, bootstrap=0)
    assert_opts_out(report._repr_html_())
