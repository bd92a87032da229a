"""evaluate_routing: APGR and CPT as RouteLLM defines them, checked by hand; random and oracle
lines; costs that stay unknown; training rows refused; thresholds that hold on held-out rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import orchnb
from orchnb import QualityRouter, SpecError
from orchnb.evals import evaluate_routing, graded_answers, load_routing

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "routing"
SMALL = pd.DataFrame({"text": list("abcd"), "weak_score": [0, 1, 0, 1],
                      "strong_score": [1, 1, 1, 0], "s": [0.9, 0.7, 0.4, 0.1]})


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weak = rng.random(n) < 0.6
    strong = weak | (rng.random(n) < 0.5)
    strong &= rng.random(n) > 0.05
    return pd.DataFrame({"text": [f"row {i}" for i in range(n)], "weak_score": weak.astype(int),
                         "strong_score": strong.astype(int)})


def test_apgr_and_cpt_equal_a_hand_computation():
    # Sorted by score the gains are 1, 0, 1, -1 (total 1): PGR at shares 0, .25, .5, .75, 1 is
    # 0, 1, 1, 2, 1. Trapezoids of width .25: (.5 + 1 + 1.5 + 1.5) * .25 = 1.125.
    r = evaluate_routing("s", SMALL, bootstrap=0)
    assert r.apgr == pytest.approx(1.125)
    assert r.cpt(0.5) == pytest.approx(0.125) and r.cpt(0.8) == pytest.approx(0.2)
    assert r.weak_quality == 0.5 and r.strong_quality == 0.75
    assert r.curve["quality"].tolist() == pytest.approx([0.5, 0.75, 0.75, 1.0, 0.75])
    # Tied scores move together: one cut in the middle, PGR 0, 1 (both +1 rows... and the 0)
    tied = SMALL.assign(s=[1, 1, 0, 0])
    assert evaluate_routing("s", tied, bootstrap=0).curve["pgr"].tolist() == [0, 1, 1]


def test_random_routing_scores_half_and_the_oracle_as_computed():
    df = synthetic(4000)
    # Seeds apart from the data's own (seed 0 would replay the draw that made weak_score).
    apgrs = [evaluate_routing(np.random.default_rng(s).random(len(df)), df, bootstrap=0).apgr
             for s in range(100, 105)]
    assert np.mean(apgrs) == pytest.approx(0.5, abs=0.03)
    gain = df.strong_score - df.weak_score
    pa, pb, pc = (gain == 1).mean(), (gain == 0).mean(), (gain == -1).mean()
    top = pa / (pa - pc)  # PGR once every +1 row is on strong
    expected = pa * top / 2 + pb * top + pc * (top + 1) / 2
    r = evaluate_routing(gain.to_numpy(float), df, bootstrap=0)
    assert r.oracle_apgr == pytest.approx(expected) and r.apgr == pytest.approx(expected)


def test_bootstrap_interval_brackets_apgr_and_each_point():
    df = synthetic(1500, seed=1)
    noisy = (df.strong_score - df.weak_score) + np.random.default_rng(1).normal(0, 1, len(df))
    r = evaluate_routing(noisy.to_numpy(), df, threshold=0.5, bootstrap=200)
    lo, hi = r.apgr_ci
    assert lo < r.apgr < hi and hi - lo < 0.2
    assert r.cpt_ci(0.5)[0] <= r.cpt(0.5) <= r.cpt_ci(0.5)[1]
    assert r.pgr_ci()[0] <= r.pgr <= r.pgr_ci()[1]
    assert list(r.points.index) == ["CPT(20%)", "CPT(50%)", "CPT(80%)", "threshold"]


def test_unknown_prices_stay_unknown():
    r = evaluate_routing("s", SMALL, bootstrap=0)
    assert r.cost_per_1k(0.5) is None and r.saving(0.5) is None
    assert r.curve["cost_per_1k"].isna().all() and r.points["saving"].isna().all()
    assert "prices unknown" in r.summary and "less than" not in r.summary
    assert "held-out" not in r.summary  # bare scores cannot say what they learned from
    # One row without a price makes the whole column unknown, not a smaller sum.
    partial = SMALL.assign(sc=[0.01, None, 0.01, 0.01])
    r2 = evaluate_routing("s", partial, weak_cost=0.001, strong_cost="sc", bootstrap=0)
    assert r2.cost_per_1k(0.5) is None and "prices unknown" in r2.summary


def test_known_prices_give_cost_and_saving():
    r = evaluate_routing("s", SMALL, weak_cost=0.001, strong_cost=0.01,
                         models=("mixtral", "gpt-4"), threshold=0.5, bootstrap=0)
    assert r.cost_per_1k(0.5) == pytest.approx(5.5) and r.cost_per_1k(1.0) == pytest.approx(10)
    assert r.saving(0.5) == pytest.approx(0.45)
    assert r.curve["cost_per_1k"].tolist() == pytest.approx([1, 3.25, 5.5, 7.75, 10])
    assert r.summary.startswith("sending 50% of queries to gpt-4 keeps 100% of its gain over "
                                "mixtral and costs 45% less than gpt-4 alone")


def test_report_plots_the_curve_with_every_reference_line():
    r = evaluate_routing("s", SMALL, threshold=0.5, bootstrap=0)
    fig = r.plot()
    names = " ".join(t.name for t in fig.data)
    for word in ("weak only", "strong only", "random", "oracle", "router", "threshold"):
        assert word in names
    title = fig.layout.title.text  # short enough not to be clipped; the sentence is .summary
    assert len(title) < 80 and "APGR" in title and title != r.summary
    wrong = r.mistakes()  # only "c" (gain +1) was left on the weak model; none wasted
    assert wrong.text.tolist() == ["c"] and wrong.mistake.tolist() == ["needed strong, sent weak"]


def test_bad_inputs_say_what_to_do():
    with pytest.raises(SpecError, match="lacks column"):
        evaluate_routing("s", SMALL.drop(columns="weak_score"))
    with pytest.raises(SpecError, match="one score per row"):
        evaluate_routing([0.1, 0.2], SMALL)
    with pytest.raises(SpecError, match="missing or non-numeric"):
        evaluate_routing("s", SMALL.assign(weak_score=[0, None, 1, 1]))


@pytest.fixture(scope="module")
def mmlu_slice():
    return load_routing("mmlu", full=False)


def test_training_rows_are_refused_dropped_or_flagged(mmlu_slice):
    mmlu_slice = mmlu_slice.drop_duplicates("prompt")
    train = mmlu_slice.iloc[:300]
    qr = QualityRouter("qr", weak="sim:echo", strong="sim:echo", examples=train, text="prompt",
                       weak_score="weak_correct", strong_score="strong_correct")
    cols = {"text": "prompt", "weak_score": "weak_correct", "strong_score": "strong_correct"}
    mixed = mmlu_slice.iloc[200:400]
    with pytest.raises(SpecError, match="100 of 200 rows are among the router's training"):
        evaluate_routing(qr, mixed, **cols)
    dropped = evaluate_routing(qr, mixed, on_training="drop", bootstrap=0, **cols)
    assert dropped.rows == 100 and "100 training rows left out" in dropped.summary
    assert "on 100 held-out rows" in dropped.summary  # a router that knows its examples
    flagged = evaluate_routing(qr, mixed, on_training="flag", bootstrap=0, **cols)
    assert flagged.rows == 200 and "TRAINING rows" in flagged.summary
    # Embedding outside any run (learning, scoring) is in the report, as no trace holds it.
    assert dropped.embedded["fit"].texts == 300 and dropped.embedded["scoring"].texts == 100
    assert "Embedding outside any run: fit 300 texts" in repr(dropped)
    assert "Embedding outside any run" in dropped._repr_html_()


def test_threshold_for_a_target_share_holds_on_held_out_rows(mmlu_slice):
    # MMLU repeats a few prompts: keep one of each so no test row is a training row.
    df = mmlu_slice.drop_duplicates("prompt").sample(frac=1.0, random_state=0)
    train, test = df.iloc[: len(df) // 2], df.iloc[len(df) // 2:]
    cols = {"text": "prompt", "weak_score": "weak_correct", "strong_score": "strong_correct"}
    for share in (0.2, 0.5):
        qr = QualityRouter("qr", weak="sim:echo", strong="sim:echo", examples=train,
                           strong_share=share, **cols)
        r = evaluate_routing(qr, test, bootstrap=0, **cols)
        assert r.strong_share == pytest.approx(share, abs=0.02), share


def test_graded_answers_from_compare_and_from_a_users_table():
    rows = pd.DataFrame({"text": [f"q{i}" for i in range(6)],
                         "answer": [f"a{i}" for i in range(6)]})

    def bot(name, right):
        orchnb.SimModel(name, fn=lambda req: (f"a{int(req.messages[-1].content[1:])}"
                                              if int(req.messages[-1].content[1:]) in right
                                              else "no"), priced_as="openai:gpt-4o-mini").register()
        return orchnb.Chain(name, [orchnb.Step("answer", f"sim:{name}", "{{ input }}")])

    exp = orchnb.compare({"weak": bot("ga-weak", {0, 1}), "strong": bot("ga-strong", {0, 1, 2})},
                         rows, expected="answer", progress=False, save=False)
    table = graded_answers(exp)
    assert table.columns.tolist() == ["text", "weak_score", "weak_cost", "strong_score",
                                      "strong_cost"]
    assert table.weak_score.tolist() == [1, 1, 0, 0, 0, 0] and table.strong_score.sum() == 3
    assert (table.weak_cost > 0).all()
    assert graded_answers(table, scores=["weak_score", "strong_score"]) is table
    with pytest.raises(SpecError, match="lacks column"):
        graded_answers(table, scores=["nope"])


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/routing is absent (the full "
                    "RouteLLM data lives beside the repository, not in it)")
def test_full_gsm8k_held_out_beats_random_with_sim_embeddings():
    df = pd.read_csv(SHARED / "gsm8k.csv").drop_duplicates("prompt").sample(frac=1.0,
                                                                           random_state=0)
    cols = {"text": "prompt", "weak_score": "weak_correct", "strong_score": "strong_correct"}
    train, test = df.iloc[:660], df.iloc[660:]
    qr = QualityRouter("qr", weak="sim:echo", strong="sim:echo", examples=train,
                       strong_share=0.3, **cols)
    r = evaluate_routing(qr, test, bootstrap=100, **cols)
    assert r.strong_share == pytest.approx(0.3, abs=0.03)
    assert 0.4 < r.apgr < 0.9 and r.weak_quality < r.strong_quality


def test_model_ids_are_priced_from_the_table_and_unknown_names_stay_unknown():
    from orchnb.evals import rates_for

    strong = rates_for("openai:gpt-4-1106-preview")
    both = evaluate_routing("s", SMALL, models=("openai:gpt-4o-mini", "openai:gpt-4-1106-preview"),
                            output_tokens=100, bootstrap=0)
    # A one-character prompt is 1 + 3 tokens by sim's count; 100 answer tokens.
    assert both.cost_per_1k(1.0) == pytest.approx(1000 * (4 * strong.input + 100 * strong.output))
    half = evaluate_routing("s", SMALL, models=("my-local-llm", "openai:gpt-4-1106-preview"),
                            output_tokens=100, bootstrap=0)
    assert half.cost_per_1k(1.0) is None and "prices unknown" in half.summary


def test_a_cascade_is_scored_on_the_same_axes_and_pays_both_models_when_it_escalates():
    r = evaluate_routing("s", SMALL, weak_cost=0.001, strong_cost=0.01, cascade=True,
                         threshold=0.5, bootstrap=0)
    # Two escalated rows pay 0.011, two kept rows 0.001: 6 dollars per 1,000 against 10.
    assert r.cost_per_1k(0.5) == pytest.approx(6.0) and r.saving(0.5) == pytest.approx(0.4)
    assert r.saving(1.0) == pytest.approx(-0.1)  # escalating everything is dearer than strong
    assert r.apgr == pytest.approx(1.125)  # quality does not depend on who pays
    always = evaluate_routing("s", SMALL, weak_cost=0.001, strong_cost=0.01, cascade=True,
                              threshold=0.0, bootstrap=0)
    assert "costs 10% more than strong alone" in always.summary
