"""Labels: the store keyed by row content, export, and failure categories from notes and tags."""

from __future__ import annotations

import pandas as pd
import pytest

from orchnb.evals import Labels
from orchnb.evals._label_source import sample_rows, source_rows
from orchnb.evals._label_store import row_key
from orchnb.evals._labels import note_categories
from orchnb.exceptions import SpecError


def _labelled() -> Labels:
    labels = Labels("bot")
    labels.add({"input": "q1", "output": "a1"}, "pass")
    labels.add({"input": "q2", "output": "a2"}, "fail", note="too long", tags=["verbose"])
    labels.add({"input": "q3", "output": "a3"}, "fail", note="far too long and rude")
    labels.add({"input": "q4", "output": "a4"}, "fail", note="rude tone")
    labels.add({"input": "q5", "output": "a5", "expected": "x"}, "fail", note="wrong date")
    labels.add({"input": "q6", "output": "a6"}, "fail", tags="verbose, dates")
    return labels


def test_labels_are_keyed_by_row_content_and_survive_a_new_object():
    labels = _labelled()
    labels.add({"input": "q1", "output": "a1"}, "fail", note="changed my mind")
    again = Labels("bot")  # as after a kernel restart: read from ORCHNB_HOME
    df = again.df
    assert len(df) == 6 and df.loc[df["input"] == "q1", "label"].item() == "fail"
    assert df.loc[df["input"] == "q5", "key"].item() == row_key("q5", "a5", "x")
    assert again.counts() == {"fail": 6}
    assert Labels("other").df.empty
    labels.add({"input": "q1", "output": "a1"}, None)
    assert len(Labels("bot")) == 5


def test_categories_from_tags_and_notes_with_merge_and_rename():
    labels = _labelled()
    cats = labels.categories()
    assert cats["count"].to_dict() == {"verbose": 2, "long": 1, "rude": 1, "dates": 1,
                                       "wrong": 1}
    assert cats.loc["verbose", "share"] == pytest.approx(2 / 5)
    labels.merge(["long", "verbose"], into="too long").rename("wrong", "wrong facts")
    cats = Labels("bot").categories()  # stored: a new object sees the merge
    assert cats["count"].to_dict() == {"too long": 3, "dates": 1, "rude": 1, "wrong facts": 1}
    assert set(labels.rows("too long")["input"]) == {"q2", "q3", "q6"}
    with pytest.raises(SpecError, match="no category 'nope'"):
        labels.rows("nope")
    fig = labels.plot_categories()
    assert list(fig.data[0].y)[-1] == "too long"


def test_note_categories_share_the_most_common_word():
    assert note_categories(["", "the answer"]) == ["(no note)", "(no note)"]


def test_export_csv_and_parquet(tmp_path):
    labels = _labelled()
    back = pd.read_csv(labels.to_csv(tmp_path / "l.csv"))
    assert len(back) == 6 and "verbose;dates" in set(back["tags"].dropna())
    assert len(pd.read_parquet(labels.to_parquet(tmp_path / "l.parquet"))) == 6


def test_sampling_rules():
    rows = pd.DataFrame({"input": [f"q{i}" for i in range(9)], "output": ["a"] * 9,
                         "route": ["x"] * 6 + ["y"] * 3,
                         "judge_score": [0.0, 1.0, 0.5, 0.9, 0.4, 1.0, 0.0, 0.0, 0.1]})
    strat = sample_rows(source_rows(rows), "stratified:route", 4, seed=0)
    assert strat["route"].tolist() == ["x", "y", "x", "y"]
    doubt = sample_rows(source_rows(rows), "disagreements", 2, seed=0)
    assert doubt["input"].tolist() == ["q2", "q4"]  # the judge's least certain first
    assert sample_rows(rows, "random", 9, seed=1)["input"].nunique() == 9
    with pytest.raises(SpecError, match="unknown sample"):
        sample_rows(rows, "best", 2, 0)
    with pytest.raises(SpecError, match="no output column"):
        source_rows(pd.DataFrame({"input": ["a"]}))


def test_a_comparison_is_labelled_with_rows_where_candidates_differ_first():
    import orchnb
    from orchnb.evals import label_rows

    data = pd.DataFrame({"text": ["a", "b", "c", "d", "e"],
                         "expected": ["A", "B", "c", "D", "neither"]})
    upper = orchnb.Chain("upper", [orchnb.FunctionStep("u", str.upper)])
    same = orchnb.Chain("same", [orchnb.FunctionStep("s", lambda x: x)])
    exp = orchnb.compare([upper, same], data, text="text", expected="expected",
                         scorers=["exact"], progress=False)
    rows = label_rows(exp, sample="disagreements")
    assert len(rows) == 10 and {r["candidate"] for r, _ in rows} == {"upper", "same"}
    # a-d: one candidate right, the other wrong; e: both wrong, so it comes last
    assert {r["input"] for r, _ in rows[:8]} == {"a", "b", "c", "d"}
    assert [r["input"] for r, _ in rows[8:]] == ["e", "e"]
    assert all(item["key"] for _, item in rows)


def test_people_pass_rates_beside_a_comparison():
    import orchnb

    data = pd.DataFrame({"text": ["a", "b", "c", "d"], "expected": ["A", "B", "C", "D"]})
    upper = orchnb.Chain("upper", [orchnb.FunctionStep("u", str.upper)])
    same = orchnb.Chain("same", [orchnb.FunctionStep("s", lambda x: x)])
    exp = orchnb.compare([upper, same], data, text="text", expected="expected",
                         scorers=["exact"], progress=False)
    w = orchnb.label(exp, sample="all", name="cmp")
    for item in w.items:  # people pass the upper-case answers only, and skip "d"
        if item["input"] != "d":
            w.give(item["key"], "pass" if item["output"].isupper() else "fail")
    rates = w.labels.pass_rates(exp)
    assert rates.loc["upper", "labelled"] == 3 and rates.loc["upper", "people_pass"] == 1.0
    assert rates.loc["same", "people_pass"] == 0.0
    table = exp.attach_labels(w).table
    assert table["people_pass"].to_dict() == {"upper": 1.0, "same": 0.0}
    assert "people_pass" in exp._repr_html_()


def test_labels_attached_to_an_experiment_come_back_when_it_is_reopened():
    import orchnb

    data = pd.DataFrame({"text": ["a", "b", "c"], "expected": ["A", "B", "C"]})
    upper = orchnb.Chain("upper", [orchnb.FunctionStep("u", str.upper)])
    same = orchnb.Chain("same", [orchnb.FunctionStep("s", lambda x: x)])
    exp = orchnb.compare([upper, same], data, text="text", expected="expected",
                         scorers=["exact"], progress=False)
    w = orchnb.label(exp, sample="all", name="reopen", fail=("fail", "bad"))
    for item in w.items[:4]:
        w.give(item["key"], "pass" if item["output"].isupper() else "fail")
    before = exp.attach_labels(w).table[["labelled", "people_pass"]]
    again = orchnb.evals.load_experiment(exp.save())
    assert again.labels.name == "reopen" and again.labels.keys == w.labels.keys
    assert again.labels.fail == ["fail", "bad"]
    pd.testing.assert_frame_equal(again.table[["labelled", "people_pass"]], before)
    # a reference, not a copy: a label given after the save shows in the reopened table
    w.give(w.items[4]["key"], "fail")
    assert again.table["labelled"].sum() == before["labelled"].sum() + 1
    exp.labels = None  # saved without labels: reopened without them
    assert orchnb.evals.load_experiment(exp.save()).labels is None
