"""The quality scorer's heads: one kNN pass gives every k, folds by group keep groups whole, a
prompt-length term is kept only when cross-validation favours it, and embedding outside a run
is counted."""

from __future__ import annotations

import numpy as np
import pytest

from orchnb import SpecError
from orchnb.patterns import QualityScorer
from orchnb.patterns._quality_heads import EmbedCost, Head, apply, fold_ids, knn_many, train


def test_one_knn_pass_equals_each_k_computed_alone():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y, q = rng.normal(size=60), x[:5] + 0.1
    got = knn_many(x, y, q, [3, 10, 100])
    for k, scores in zip([3, 10, 60], got, strict=True):  # k past the rows: all of them
        sims = q @ x.T
        top = np.argsort(-sims, axis=1)[:, :k]
        w = np.clip(np.take_along_axis(sims, top, axis=1), 1e-6, None)
        assert scores == pytest.approx((w * y[top]).sum(1) / w.sum(1))


def test_folds_by_group_keep_each_group_whole_and_refuse_one_group():
    groups = [f"s{i % 7}" for i in range(70)]
    fold = fold_ids(70, 0, groups)
    for g in set(groups):
        assert len({fold[i] for i in range(70) if groups[i] == g}) == 1
    assert len(set(fold)) == 5
    with pytest.raises(SpecError, match="2 groups or more"):
        fold_ids(3, 0, ["a", "a", "a"])
    with pytest.raises(SpecError, match="one per example"):
        fold_ids(3, 0, ["a", "b"])


def test_a_length_term_is_kept_when_gain_follows_length_and_needs_texts():
    # Long prompts need the strong model; the words say nothing about it.
    rng = np.random.default_rng(1)
    n = rng.integers(1, 40, size=120)
    texts = [f"q{i} " + "word " * int(k) for i, k in enumerate(n)]
    gains = (n > 20).astype(float)
    s = QualityScorer(texts, gains, vectors=rng.normal(size=(120, 16)),
                      groups=[i % 6 for i in range(120)], length=True)
    assert s.head.length > 0 and "+length" in str(s.head)
    short, long = "q " + "word " * 2, "q " + "word " * 35
    scores = s.score_vectors(rng.normal(size=(2, 16)), [short, long])
    assert scores[1] > scores[0]
    with pytest.raises(SpecError, match="pass texts="):
        s.score_vectors(rng.normal(size=(2, 16)))
    plain = QualityScorer(texts, gains, vectors=rng.normal(size=(120, 16)))  # off by default
    assert plain.head.length == 0


def test_embedding_outside_a_run_is_counted():
    s = QualityScorer(["2+2?", "prove Fermat"] * 20, [0, 1] * 20, embed="sim")
    fit = s.embedded["fit"]
    assert (fit.texts, fit.dollars, fit.encoded) == (40, 0.0, None) and fit.tokens > 0
    s.scores(["3+3?", "prove it"])
    assert s.embedded["scoring"].texts == 2
    total = EmbedCost()
    total.add(fit)
    total.add(EmbedCost(1, 5, 1, None, 0.1, 0.1))
    assert (total.texts, total.dollars, total.encoded) == (41, None, 1)
    assert "price unknown" in str(total) and "1 encoded" in str(total)


def test_a_blend_is_the_z_scored_mix_of_its_knn_and_ridge_parts_in_gain_units():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y, q = rng.normal(size=50), x[:4]
    head = Head("blend", 0.25, 0.0, 10, 1.0)
    assert str(head) == "0.25*knn(k=10)+0.75*linear(alpha=1)"
    knn, ridge = head.parts()
    stats = (0.1, 2.0, -0.3, 0.5)
    got = apply(head, train(head, x, y, stats), q)
    parts = apply(knn, train(knn, x, y), q), apply(ridge, train(ridge, x, y), q)
    # In the kNN part's units (mean 0.1, spread 2), so it is still a predicted gain.
    mixed = 0.25 * (parts[0] - 0.1) / 2.0 + 0.75 * (parts[1] + 0.3) / 0.5
    assert got == pytest.approx(0.1 + 2.0 * mixed)


def test_auto_tries_blends_and_centres_the_vectors():
    # A large direction shared by every vector (as in MiniLM) hides the one that matters.
    rng = np.random.default_rng(3)
    hard = np.arange(80) % 2
    x = 5.0 + rng.normal(size=(80, 8)) * 0.1
    x[:, 0] += np.where(hard, 0.3, -0.3)
    s = QualityScorer([f"q{i}" for i in range(80)], hard.astype(float), vectors=x)
    assert any(name.startswith("0.5*knn") for name, _ in s.cv)
    assert abs(s.prepare(x).mean(axis=0)).max() < abs(x / np.linalg.norm(x, axis=1,
                                                                        keepdims=True)).mean()
    # Centred, every head orders the rows perfectly: hard half first, APGR 0.25 + 0.5.
    assert dict(s.cv)[str(s.head)] == pytest.approx(0.75)
    probe = 5.0 + np.zeros((2, 8))
    probe[:, 0] += [0.3, -0.3]
    high, low = s.score_vectors(probe)
    assert high > low


def test_ridge_with_fewer_rows_than_dimensions_gives_the_same_weights():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 30)), rng.normal(size=12)
    w, b = train(Head("linear", 3.0), x, y)
    xc = x - x.mean(axis=0)
    primal = np.linalg.solve(xc.T @ xc + 3.0 * np.eye(30), xc.T @ (y - y.mean()))
    assert w == pytest.approx(primal) and b == pytest.approx(y.mean() - x.mean(axis=0) @ primal)


def test_knn_and_ridge_fit_every_column_of_a_ladder_at_once():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y, q = rng.normal(size=(40, 3)), x[:5] + 0.05
    for head in (Head("knn", 7), Head("linear", 2.0)):
        both = apply(head, train(head, x, y), q)
        for j in range(3):
            assert both[:, j] == pytest.approx(apply(head, train(head, x, y[:, j]), q))
