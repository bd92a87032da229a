"""orchnb.agreement: κ, TPR, TNR equal scikit-learn's; Rogan–Gladen equals a hand computation;
the held-out split; reports matched to labels by row content."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix, recall_score

import orchnb
from orchnb.evals._agreement import rogan_gladen
from orchnb.exceptions import SpecError


def _vectors(seed, n=200):
    rng = np.random.default_rng(seed)
    human = rng.integers(0, 2, n)
    flip = rng.random(n) < 0.25
    judge = np.where(flip, 1 - human, human)
    scores = np.where(judge == 1, rng.uniform(0.5, 1, n), rng.uniform(0, 0.49, n))
    return human, judge, scores


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kappa_tpr_tnr_equal_sklearn(seed):
    human, judge, scores = _vectors(seed)
    labels = np.where(human == 1, "pass", "fail")
    a = orchnb.agreement(scores, labels, n_boot=200)
    assert a.kappa == pytest.approx(cohen_kappa_score(human, judge), abs=1e-12)
    assert a.tpr == pytest.approx(recall_score(human, judge, pos_label=1), abs=1e-12)
    assert a.tnr == pytest.approx(recall_score(human, judge, pos_label=0), abs=1e-12)
    assert a.accuracy == pytest.approx((human == judge).mean(), abs=1e-12)
    cm = confusion_matrix(human, judge, labels=[1, 0])
    assert a.confusion.to_numpy().tolist() == cm.tolist()
    assert len(a.disagreements) == int((human != judge).sum())
    t = a.table
    assert list(t.index) == ["TPR", "TNR", "accuracy", "kappa"]
    assert (t["ci_low"] <= t["value"]).all() and (t["value"] <= t["ci_high"]).all()


def test_corrected_rate_equals_a_hand_computation():
    # TPR 8/10, TNR 6/10: Rogan–Gladen of p = 0.62 is (0.62 + 0.6 - 1) / (0.8 + 0.6 - 1)
    human = ["pass"] * 10 + ["fail"] * 10
    judge = [1] * 8 + [0] * 2 + [1] * 4 + [0] * 6
    a = orchnb.agreement(judge, human, n_boot=500)
    assert (a.tpr, a.tnr) == (0.8, 0.6)
    c = a.corrected_rate(0.62, n=300)
    assert c.rate == pytest.approx((0.62 + 0.6 - 1) / (0.8 + 0.6 - 1))
    assert c.raw == 0.62 and c.ci_low <= c.rate <= c.ci_high and c.ci_high - c.ci_low > 0.05
    assert a.corrected_rate(0.1).rate == 0.0  # clipped
    assert a.corrected_rate(1.0).rate == 1.0
    assert "corrected 55.0%" in str(c)


def test_a_judge_no_better_than_chance_has_no_corrected_rate():
    assert math.isnan(rogan_gladen(0.5, 0.5, 0.5))
    a = orchnb.agreement([1, 0, 1, 0], ["pass", "pass", "fail", "fail"], n_boot=50)
    assert math.isnan(a.corrected_rate(0.4).rate)
    assert "no better than chance" in str(a.corrected_rate(0.4))


def test_holdout_measures_only_held_out_rows():
    human, judge, _ = _vectors(5, n=100)
    a = orchnb.agreement(judge, human, positive=1, holdout=0.3, seed=1, n_boot=0)
    test = a.rows["split"] == "test"
    assert test.sum() == 30 and a.n == 30
    h, j = human[test.to_numpy()], judge[test.to_numpy()]
    assert a.kappa == pytest.approx(cohen_kappa_score(h, j))
    flags = [True] * 10 + [False] * 90
    b = orchnb.agreement(judge, human, positive=1, holdout=flags, n_boot=0)
    assert b.n == 10 and "held-out" in b.sentence


def test_skipped_labels_are_left_out_and_bad_input_is_refused():
    a = orchnb.agreement([0.9, 0.1, 0.7], ["pass", "skip", None], n_boot=0)
    assert a.n == 1
    with pytest.raises(SpecError, match="3 labels for 2 judged rows"):
        orchnb.agreement([1, 0], ["pass", "fail", "pass"])
    with pytest.raises(SpecError, match="no row has both"):
        orchnb.agreement([0.5], ["skip"])
    with pytest.raises(SpecError, match="holdout"):
        orchnb.agreement([1, 0], ["pass", "fail"], holdout=1.5)


def test_a_report_is_matched_to_labels_by_row_content(orchnb_home):
    from orchnb.evals import Labels

    frame = pd.DataFrame({"input": ["a", "b", "c"], "output": ["A", "B", "C"],
                          "judge": [0.9, 0.2, 0.75], "status": ["ok"] * 3})

    class Report:  # the two attributes agreement reads from an eval report
        scores = frame
        scorers = ({"name": "judge", "binary": False, "llm": True},)

    labels = Labels("t")
    labels.add({"input": "c", "output": "C"}, "fail", note="too long")
    labels.add({"input": "a", "output": "A"}, "pass")
    a = orchnb.agreement(Report(), labels, n_boot=0)
    assert a.n == 2 and a.tpr == 1.0 and a.tnr == 0.0
    assert a.disagreements["input"].tolist() == ["c"]
    assert a.disagreements["note"].tolist() == ["too long"]
    assert "Agreement" in a._repr_html_() and "κ" in repr(a)
