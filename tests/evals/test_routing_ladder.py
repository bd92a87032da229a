"""evaluate_routing over a ladder of models: quality against cost checked by hand on three
models, each model alone as a point, the oracle, unknown prices, and the two-model case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchnb import QualityRouter
from orchnb.evals import LadderReport, evaluate_routing

COSTS = [0.001, 0.004, 0.01]


def table(n: int = 6) -> pd.DataFrame:
    """Kinds in turn: all right; mid and dear right; only dear right."""
    kind = np.arange(n) % 3
    return pd.DataFrame({"text": [f"q{i} kind {k}" for i, k in enumerate(kind)],
                         "cheap": (kind == 0).astype(int), "mid": (kind < 2).astype(int),
                         "dear": np.ones(n, dtype=int)})


def test_a_perfect_ladder_equals_a_hand_computation():
    df = table()
    pred = df[["cheap", "mid", "dear"]].to_numpy(float)  # it predicts every grade
    r = evaluate_routing(pred, df, scores=["cheap", "mid", "dear"], costs=COSTS, threshold=0.0,
                         models=["small", "medium", "large"])
    assert isinstance(r, LadderReport)
    assert r.singles["quality"].tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    assert r.singles["cost_per_1k"].tolist() == pytest.approx([1, 4, 10])
    assert r.shares == pytest.approx({"small": 1 / 3, "medium": 1 / 3, "large": 1 / 3})
    assert r.quality == 1 and r.pgr == 1
    assert r.cost_per_1k == pytest.approx(5.0) and r.saving == pytest.approx(0.5)
    # The frontier: all small ($1, PGR 0), each kind on its model ($5 = 4/9 of the way from
    # $1 to $10, PGR 1), all large ($10, PGR 1): area 1/2 * 4/9 + 5/9 = 7/9.
    assert r.apgr == pytest.approx(7 / 9) and r.oracle_apgr == pytest.approx(7 / 9)
    assert "33% to small, 33% to medium, 33% to large keeps 100%" in r.summary
    assert "costs 50% less than large alone" in r.summary
    fig = r.plot()
    assert {t.name for t in fig.data} >= {"each model alone", "at its threshold"}


def test_unknown_prices_stay_unknown_and_the_axis_says_so():
    df = table()
    pred = df[["cheap", "mid", "dear"]].to_numpy(float)
    r = evaluate_routing(pred, df, scores=["cheap", "mid", "dear"], threshold=0.0)
    assert r.cost_per_1k is None and r.saving is None and not r.priced
    assert "no saving claimed" in r.summary and "ladder position" in r.summary
    assert r.singles["cost_per_1k"].isna().all()
    # Position: all small 0, each kind on its model (0 + 1 + 2) / 3 / 2 = 0.5, all large 1.
    assert r.apgr == pytest.approx(0.5 * 0.5 + 0.5)


def test_two_models_give_the_two_model_apgr():
    df = pd.DataFrame({"text": list("abcd"), "weak_score": [0, 1, 0, 1],
                       "strong_score": [1, 1, 1, 0], "s": [0.9, 0.7, 0.4, 0.1]})
    two = evaluate_routing("s", df, bootstrap=0)
    pred = np.c_[np.zeros(4), df["s"]]
    ladder = evaluate_routing(pred, df, scores=["weak_score", "strong_score"])
    assert ladder.apgr == pytest.approx(two.apgr) == pytest.approx(1.125)


def test_a_ladder_router_is_judged_on_held_out_rows_only():
    kind = np.arange(90) % 3
    data = pd.DataFrame({"text": [(f"add the numbers {i} and {i + 1}",
                                   f"a train leaves station {i} at noon",
                                   f"prove theorem {i} about prime ideals")[k]
                                  for i, k in enumerate(kind)],
                         "cheap": (kind == 0).astype(int), "mid": (kind < 2).astype(int),
                         "dear": 1})
    qr = QualityRouter("qr", ladder=["sim:echo"] * 3, scores=["cheap", "mid", "dear"],
                       examples=data.iloc[:60], quality=1.0)
    with pytest.raises(Exception, match="training"):
        evaluate_routing(qr, data, scores=["cheap", "mid", "dear"])
    r = evaluate_routing(qr, data.iloc[60:], scores=["cheap", "mid", "dear"], costs=COSTS)
    assert r.held_out and r.names == ["cheap", "mid", "dear"] and r.pgr == 1
    assert r.saving == pytest.approx(0.5)
    lo, hi = r.apgr_ci  # rows resampled, the curve's cuts kept
    assert lo <= r.apgr <= hi and "95% CI" in r.summary
    assert evaluate_routing(qr, data.iloc[60:], scores=["cheap", "mid", "dear"],
                            bootstrap=0).apgr_ci is None
