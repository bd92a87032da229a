"""The report's words: singular and plural counts, and tiny amounts that do not read as $0."""

from __future__ import annotations

import pandas as pd

from orchnb.evals import evaluate
from orchnb.trace import fmt_usd


def test_tiny_amounts_keep_their_significant_digits_and_unknown_reads_unpriced():
    # evals format money with the package's one formatter (orchnb.trace.fmt_usd)
    assert fmt_usd(2.1e-5) == "$0.000021"
    assert fmt_usd(0.0042) == "$0.0042" and fmt_usd(1.5) == "$1.50" and fmt_usd(0) == "$0"
    assert fmt_usd(float("nan")) == "unpriced"  # never "$0.00" for an unknown amount


def test_one_row_eval_says_one_row_one_call_one_misrouted_row(make_router):
    one = pd.DataFrame({"text": ["I was charged twice"], "label": ["shipping"]})
    report = evaluate(make_router("solo"), one, progress=False)
    text = str(report.estimate)
    assert "for 1 row: 1 call," in text and "1 calls" not in text
    html = report._repr_html_()
    assert "· 1 row ·" in html and "1 misrouted row<" in html
    assert " 1 rows" not in html and "1 calls" not in html
    assert "1 row," in repr(report)


def test_a_01_score_and_its_interval_are_both_percent_in_one_box():
    # Issue 24: "57.5%" beside "95% CI 0.450–0.700" in one report.
    import re

    import orchnb

    rows = pd.DataFrame({"text": [f"q{i}" for i in range(40)],
                         "expected": [f"q{i}" if i % 2 else "no" for i in range(40)]})
    pipe = orchnb.Chain("half", [orchnb.Step("s", "sim:echo", "{{ input }}")])
    html = evaluate(pipe, rows, expected="expected", progress=False)._repr_html_()
    assert re.search(r"50\.0%.*95% CI \d+\.\d%–\d+\.\d%", html, re.S), html[:2000]
    assert not re.search(r"95% CI 0\.\d{3}–", html)
