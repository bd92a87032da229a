"""Every metric equals scikit-learn's on the same predictions; the bootstrap is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from orchnb.evals import _metrics as m
from orchnb.evals import evaluate
from orchnb.evals._report import NO_ROUTE


def _sk(report):
    p = report.predictions
    y_true = p["label"].tolist()
    y_pred = p["route"].fillna(NO_ROUTE).tolist()
    return y_true, y_pred


def test_report_metrics_equal_sklearn_on_the_same_predictions(tickets, make_router):
    report = evaluate(make_router(), tickets, progress=False)
    y_true, y_pred = _sk(report)
    labels = report.labels
    assert 0.3 < report.accuracy < 0.95  # imperfect on purpose: every metric is exercised
    assert report.accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    t = report.per_route
    np.testing.assert_allclose(t["precision"], p, atol=1e-12)
    np.testing.assert_allclose(t["recall"], r, atol=1e-12)
    np.testing.assert_allclose(t["f1"], f, atol=1e-12)
    np.testing.assert_array_equal(t["support"], s)
    for avg in ("macro", "weighted"):
        sp, sr, sf, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                        average=avg, zero_division=0)
        row = report.averages.loc[f"{avg} avg"]
        assert (row.precision, row.recall, row.f1) == pytest.approx((sp, sr, sf), abs=1e-12)
    assert report.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert report.weighted_f1 == pytest.approx(
        f1_score(y_true, y_pred, average="weighted"), abs=1e-12)
    np.testing.assert_array_equal(report.confusion.to_numpy(),
                                  confusion_matrix(y_true, y_pred, labels=labels))
    np.testing.assert_allclose(report.confusion_normalized.to_numpy(),
                               confusion_matrix(y_true, y_pred, labels=labels, normalize="true"))
    lat = report.predictions["latency_ms"].to_numpy()
    assert report.latency_p50_ms == pytest.approx(np.percentile(lat, 50))
    assert report.latency_p95_ms == pytest.approx(np.percentile(lat, 95))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_sklearn_with_absent_and_extra_labels(seed):
    rng = np.random.default_rng(seed)
    true = rng.choice(["a", "b", "c", "d"], size=300, p=[0.5, 0.3, 0.15, 0.05]).tolist()
    pred = rng.choice(["a", "b", "c", "zz"], size=300).tolist()  # "d" never predicted
    labels = m.label_order(true, pred, ["b", "a"])
    cm = m.confusion(m.encode(true, labels), m.encode(pred, labels), len(labels))
    s = m.scores(cm)
    p, r, f, sup = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(s.precision, p)
    np.testing.assert_allclose(s.recall, r)
    np.testing.assert_allclose(s.f1, f)
    np.testing.assert_array_equal(s.support, sup)
    macro = precision_recall_fscore_support(true, pred, average="macro", zero_division=0)[:3]
    weighted = precision_recall_fscore_support(true, pred, average="weighted", zero_division=0)
    assert s.macro() == pytest.approx(macro)
    assert s.weighted() == pytest.approx(weighted[:3])
    np.testing.assert_allclose(m.normalized(cm),
                               confusion_matrix(true, pred, labels=labels, normalize="true"))


def test_bootstrap_is_seeded_reproducible_and_a_plain_row_resample():
    rng = np.random.default_rng(5)
    t = rng.integers(0, 3, 400)
    p = np.where(rng.random(400) < 0.8, t, rng.integers(0, 3, 400))
    a = m.bootstrap(t, p, 3, n_boot=500, seed=7)
    assert a == m.bootstrap(t, p, 3, n_boot=500, seed=7)
    assert a != m.bootstrap(t, p, 3, n_boot=500, seed=8)
    acc = float((t == p).mean())
    assert a.accuracy[0] < acc < a.accuracy[1]
    # The same numbers as the textbook loop: resample rows with replacement, take percentiles.
    g = np.random.default_rng(7)
    correct = t == p
    accs = [correct[g.integers(0, 400, size=400)].mean() for _ in range(500)]
    assert a.accuracy == pytest.approx(tuple(np.quantile(accs, [0.025, 0.975])))


def test_report_confidence_interval_is_reproducible(small, make_router):
    router = make_router()
    one = evaluate(router, small, progress=False, seed=3)
    two = evaluate(router, small, progress=False, seed=3)
    assert one.accuracy_ci == two.accuracy_ci
    assert one.accuracy_ci[0] <= one.accuracy <= one.accuracy_ci[1]
    # 12 rows per class: the macro-F1 interval is withheld from the report, but the bootstrap
    # behind it is still seeded.
    assert one.bootstrap.macro_f1 == two.bootstrap.macro_f1
    # 60 rows: accuracy moves in steps of 1/60, so compare the finer macro-F1 interval.
    assert evaluate(router, small, progress=False, seed=4).bootstrap.macro_f1 != (
        one.bootstrap.macro_f1)


def test_pareto_front_ignores_unknown_costs():
    assert m.pareto_front([1, 2, float("nan"), 2], [0.5, 0.9, 0.99, 0.8]) == [
        True, True, False, False]
