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
