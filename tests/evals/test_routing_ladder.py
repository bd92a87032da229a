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
    assert "sending 33% to medium and 33% to large keeps 100%" in r.summary
    assert "costs 50% (95% CI " in r.summary and "less than large alone" in r.summary
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


def noisy(n: int = 60) -> tuple[pd.DataFrame, np.ndarray]:
    """The three kinds, and predictions of their grades with noise (some picks wrong)."""
    df = table(n)
    pred = df[["cheap", "mid", "dear"]].to_numpy(float)
    return df, pred + np.random.default_rng(1).normal(0, 0.4, pred.shape)


def test_the_point_at_the_threshold_has_intervals_and_the_sentence_says_them():
    df, pred = noisy()
    r = evaluate_routing(pred, df, scores=["cheap", "mid", "dear"], costs=COSTS, threshold=0.0)
    for key, value in (("quality", r.quality), ("pgr", r.pgr),
                       ("cost_per_1k", r.cost_per_1k), ("saving", r.saving)):
        lo, hi = r.point_ci[key]
        assert lo <= value <= hi and lo < hi, key
    assert r.points.loc["saving", "ci"] == r.point_ci["saving"]
    share_mid, share_dear = r.shares["mid"], r.shares["dear"]
    assert r.summary.startswith(f"sending {share_mid:.0%} to mid and {share_dear:.0%} to dear "
                                f"keeps {r.pgr:.0%} (95% CI ")
    lo, hi = r.point_ci["saving"]
    assert f"costs {r.saving:.0%} (95% CI {lo:.0%}–{hi:.0%}) less than dear alone" in r.summary
    bare = evaluate_routing(pred, df, scores=["cheap", "mid", "dear"], threshold=0.0,
                            bootstrap=0)
    assert bare.point_ci["pgr"] is None and "CI" not in bare.summary
    assert bare.point_ci["cost_per_1k"] is None  # no prices: no interval either


def test_mistakes_name_the_model_that_was_needed_and_what_the_pick_lost():
    df, pred = noisy()
    r = evaluate_routing(pred, df, scores=["cheap", "mid", "dear"], costs=COSTS, threshold=0.0)
    m = r.mistakes(50)
    low = m[m["mistake"].str.startswith("sent too cheap")]
    high = m[m["mistake"].str.startswith("sent too dear")]
    pick = {"cheap": 0, "mid": 1, "dear": 2}
    assert len(low) and len(high)
    assert all(pick[c] < pick[n] for c, n in zip(low["chosen"], low["needed"], strict=True))
    assert (low["quality_lost"] == 1).all() and (low["cost_lost"] == 0).all()
    assert all(pick[c] > pick[n] for c, n in zip(high["chosen"], high["needed"], strict=True))
    want = [COSTS[pick[c]] - COSTS[pick[n]] for c, n in zip(high["chosen"], high["needed"],
                                                              strict=True)]
    assert high["cost_lost"].tolist() == pytest.approx(want)
    assert high["cost_lost"].is_monotonic_decreasing
    # Every row the router got wrong is listed once: quality lost + quality kept on the rest.
    assert r.quality == pytest.approx(1 - low["quality_lost"].sum() / len(df))
    assert len(r.mistakes(1)) == 2
    unpriced = evaluate_routing(pred, df, scores=["cheap", "mid", "dear"], threshold=0.0)
    assert "steps_too_high" in unpriced.mistakes(3)
    with pytest.raises(Exception, match="threshold="):
        evaluate_routing(pred, df, scores=["cheap", "mid", "dear"]).mistakes()
