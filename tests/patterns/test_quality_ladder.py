"""QualityRouter over a ladder of models by price: on a hand-checkable table of three models it
sends each kind of query to the cheapest model that gets it right, meets its targets on
held-out examples, runs, traces the model chosen, and round-trips YAML."""

from __future__ import annotations

import pandas as pd
import pytest

from orchnb import QualityRouter, SpecError, Step
from orchnb.patterns import from_yaml, ladder_choice, switch_points

COSTS = [0.001, 0.004, 0.01]


def graded(n: int = 60) -> pd.DataFrame:
    """Sums: every model is right. Word problems: mid and dear. Proofs: only dear."""
    rows = []
    for i in range(n):
        kind = i % 3
        text = (f"add the numbers {i} and {i + 1}", f"a train leaves station {i} at noon",
                f"prove theorem {i} about prime ideals")[kind]
        rows.append({"text": text, "cheap": int(kind == 0), "mid": int(kind < 2), "dear": 1})
    return pd.DataFrame(rows)


def ladder() -> list[Step]:
    return [Step(n, "sim:echo", f"{n}: {{{{ input }}}}") for n in ("small", "medium", "large")]


def make(**kw) -> QualityRouter:
    return QualityRouter("qr", ladder=kw.pop("ladder", ladder()), scores=["cheap", "mid", "dear"],
                         examples=kw.pop("examples", graded()), **kw)


def test_the_rule_takes_the_cheapest_model_as_good_as_every_dearer_one():
    pred = [[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.5, 0.2, 0.6]]
    assert switch_points(pred)[:, :2].tolist() == [[0, 0], [1, 0], [1, 1],
                                                   [pytest.approx(0.1), pytest.approx(0.4)]]
    assert ladder_choice(pred, 0.0).tolist() == [0, 1, 2, 2]
    assert ladder_choice(pred, 0.1).tolist() == [0, 1, 2, 0]  # within 0.1 of the best dearer one
    assert ladder_choice(pred, 9).tolist() == [0] * 4
    assert ladder_choice(pred, -9).tolist() == [2] * 4


def test_each_kind_of_query_goes_to_the_cheapest_model_that_gets_it_right():
    qr = make(quality=1.0, costs=COSTS)
    assert qr.ladder == ["small", "medium", "large"] and qr.labels == qr.ladder
    assert qr("add the numbers 3 and 4").output == "small: add the numbers 3 and 4"
    assert qr("a train leaves station 9 at noon").output.startswith("medium:")
    run = qr("prove theorem 99 about prime ideals")
    assert run.output.startswith("large:")
    decision = run.trace.df.query("kind == 'step' and step == 'quality'").iloc[0]
    assert decision.route == "large"  # the route is the model chosen, traced like any router


def test_targets_are_met_on_held_out_examples():
    full = make(quality=1.0, costs=COSTS)
    picks = ladder_choice(full.scorer.oof, full.threshold)
    assert picks.tolist() == [i % 3 for i in range(60)]  # every row right, at the least cost
    # Along the curve: all small ($1 per 1,000), each kind on its model ((1 + 4 + 10) / 3 =
    # $5), all large ($10). $4 buys only the first; $6 the best quality under the cap.
    capped = make(budget_per_1k=4.0, costs=COSTS)
    assert ladder_choice(capped.scorer.oof, capped.threshold).tolist() == [0] * 60
    enough = make(budget_per_1k=6.0, costs=COSTS)
    assert ladder_choice(enough.scorer.oof, enough.threshold).tolist() == [i % 3 for i in range(60)]
    assert make().target == ("quality", 0.8)  # the default target


def test_a_strong_share_is_the_share_sent_above_the_cheapest_model(tmp_path):
    both = make(strong_share=2 / 3)  # two kinds need more than the cheapest: each on its own
    assert ladder_choice(both.scorer.oof, both.threshold).tolist() == [i % 3 for i in range(60)]
    assert both.target == ("strong_share", 2 / 3)
    fresh = graded(90).iloc[60:]  # rows it never saw: the share holds there too
    # Word problems and proofs both need more than the cheapest, so they leave it together:
    # the shares above it are 0, 2/3 or 1, and a target takes the nearest.
    for share, near in ((0.3, 0.0), (0.4, 2 / 3), (0.9, 1.0)):
        qr = make(strong_share=share)
        held = ladder_choice(qr.scores(fresh["text"].tolist()), qr.threshold)
        oof = ladder_choice(qr.scorer.oof, qr.threshold)
        assert (oof > 0).mean() == pytest.approx(near), share
        assert (held > 0).mean() == pytest.approx(near, abs=0.02), share
    path = tmp_path / "graded.csv"
    graded().to_csv(path, index=False)
    assert "strong_share: 0.3" in make(examples=str(path), strong_share=0.3).to_yaml()



@pytest.mark.parametrize("kw, key", [
    ({"strong_share": 1.3}, None),  # check_number says which knob in its message
    ({"strong_share": 0.3, "quality": 0.5}, "strong_share"),
    ({"length": True}, "length"),
    ({"budget_per_1k": 2.0}, "costs"),
    ({"costs": [0.1, 0.2]}, "costs"),
    ({"ladder": ladder()[:2]}, "scores"),
    ({"weak": "sim:echo"}, "ladder"),
    ({"quality": 0.5, "threshold": 0.1}, "quality"),
    ({"examples": graded().drop(columns="mid")}, "examples"),
])
def test_bad_ladder_knobs_fail_before_any_call(kw, key):
    with pytest.raises(SpecError) as info:
        make(**kw)
    assert info.value.key == key


def test_model_ids_become_steps_named_after_their_model():
    qr = QualityRouter("qr", ladder=["sim:echo", "sim:echo", "sim:echo"],
                       scores=["cheap", "mid", "dear"], examples=graded())
    assert qr.ladder == ["cheap", "mid", "dear"]  # the same model thrice: named by column


def test_a_csv_ladder_round_trips_through_yaml(tmp_path):
    path = tmp_path / "graded.csv"
    graded().to_csv(path, index=False)
    qr = make(examples=str(path), costs=COSTS, budget_per_1k=6.0)
    text = qr.to_yaml()
    assert "ladder:" in text and "budget_per_1k: 6.0" in text and "weak:" not in text
    again = from_yaml(text)
    assert isinstance(again, QualityRouter) and again.to_yaml() == text
    assert again.ladder == qr.ladder and again.threshold == pytest.approx(qr.threshold)
    assert again("prove theorem 1 about prime ideals").output.startswith("large:")


def test_two_model_routers_are_unchanged_and_need_both_models():
    with pytest.raises(SpecError, match="ladder="):
        QualityRouter("qr", weak="sim:echo", examples=graded())
