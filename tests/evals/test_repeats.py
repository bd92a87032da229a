"""evaluate(pipe, ..., repeats=N): the model really is called N times; per-row spread, pass@k,
pass^k, the between-run SD and the rows that flip."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

import orchnb
from orchnb.evals import RepeatedReport, RepeatedScores

ROWS = pd.DataFrame({"text": [f"q{i}" for i in range(6)], "answer": ["a"] * 6})


def _flaky(name):
    """A sim model right on rows 0-1 always, never on rows 2-3, and on rows 4-5 every other
    call (a model at temperature > 0); counts its calls."""
    calls = {"n": 0}
    seen = {4: itertools.count(), 5: itertools.count()}

    def answer(request):
        calls["n"] += 1
        i = int(request.messages[-1].content[1:])
        if i < 2:
            return "a"
        if i < 4:
            return "b"
        return "a" if next(seen[i]) % 2 == 0 else "b"

    orchnb.SimModel(name, fn=answer, priced_as="openai:gpt-4o-mini").register()
    return orchnb.Chain(name, [orchnb.Step("s", f"sim:{name}", "{{ input }}")]), calls


def test_repeats_call_the_model_every_time_and_report_spread_and_flips():
    chain, calls = _flaky("rep-flaky")
    rep = orchnb.evaluate(chain, ROWS, expected="answer", repeats=4, progress=False, n_boot=0)
    assert isinstance(rep, RepeatedScores) and rep.repeats == 4
    assert calls["n"] == 4 * 6  # not answered from the cache after the first repeat
    assert [r.cached_calls for r in rep.reports] == [0, 0, 0, 0]
    p = rep.per_row
    assert p["flips"].tolist() == [False, False, False, False, True, True]
    assert p["pass_any"].tolist() == [True, True, False, False, True, True]
    assert p["pass_all"].tolist() == [True, True, False, False, False, False]
    assert p.loc[4, "mean"] == 0.5 and p.loc[0, "sd"] == 0
    assert list(rep.flipping.index) == [4, 5]
    s = rep.summary.loc["exact"]
    assert s.flipping == 2 and s.pass_at_k == pytest.approx(4 / 6)
    assert s.pass_hat_k == pytest.approx(2 / 6)
    # Each row 4/5 right twice in 4 tries: pass@2 = 1 - C(2,2)/C(4,2) = 5/6 on them.
    assert rep.pass_at_k(2) == pytest.approx((2 + 2 * 5 / 6) / 6)
    assert rep.pass_hat_k(2) == pytest.approx((2 + 2 * 1 / 6) / 6)
    means = [r.mean() for r in rep.reports]
    assert s.between_run_sd == pytest.approx(pd.Series(means).std())
    assert "over 4 repeats, 2 of 6 rows flip" in repr(rep)


def test_a_deterministic_pipeline_repeated_does_not_flip_and_a_rerun_reuses_repeat_0():
    chain, calls = _flaky("rep-steady")
    steady = orchnb.Chain("steady", [orchnb.FunctionStep("say", lambda x: "a")])
    rep = orchnb.evaluate(steady, ROWS, expected="answer", repeats=3, progress=False, n_boot=0)
    assert rep.summary.loc["exact", "flipping"] == 0 and rep.between_run_sd() == 0
    orchnb.evaluate(chain, ROWS.head(2), expected="answer", progress=False, n_boot=0)
    before = calls["n"]
    orchnb.evaluate(chain, ROWS.head(2), expected="answer", repeats=2, progress=False, n_boot=0)
    assert calls["n"] - before == 2  # repeat 0 from the cache, repeat 1 called again


def test_router_repeats_and_the_factory_form_keep_their_meaning(small, make_router):
    router = make_router()
    rep = orchnb.evaluate(router, small, repeats=2, progress=False, n_boot=0)
    assert isinstance(rep, RepeatedReport) and list(rep.table.index) == [0, 1]
    assert rep.reports[1].cached_calls == 0 and rep.sd() == 0
    with pytest.raises(orchnb.SpecError, match="repeats must be a whole number >= 1"):
        orchnb.evaluate(router, small, repeats=0, progress=False)
    assert math.isnan(RepeatedScores([rep_s := orchnb.evaluate(  # noqa: F841
        orchnb.Chain("one", [orchnb.FunctionStep("s", lambda x: "a")]), ROWS,
        expected="answer", progress=False, n_boot=0)]).between_run_sd())


def test_a_rerun_of_a_repeated_eval_is_all_cache_hits_and_each_repeat_keeps_its_answers():
    chain, calls = _flaky("rep-rerun")
    first = orchnb.evaluate(chain, ROWS, expected="answer", repeats=3, progress=False, n_boot=0)
    assert calls["n"] == 3 * 6
    again = orchnb.evaluate(chain, ROWS, expected="answer", repeats=3, progress=False, n_boot=0)
    assert calls["n"] == 3 * 6  # nothing paid twice
    assert [r.cached_calls for r in again.reports] == [6, 6, 6]
    # Repeat k answers from repeat k's cache: the flipping rows still flip, the same way.
    assert again.matrix().equals(first.matrix()) and list(again.flipping.index) == [4, 5]
    more = orchnb.evaluate(chain, ROWS, expected="answer", repeats=4, progress=False, n_boot=0)
    assert calls["n"] == 4 * 6 and more.reports[3].cached_calls == 0  # only repeat 3 is new


def test_repeats_send_the_steps_temperature_and_another_temperature_is_another_call():
    seen = []

    def answer(request):
        seen.append(request.temperature)
        return "a"

    orchnb.SimModel("rep-temp", fn=answer).register()

    def chain(t):
        return orchnb.Chain("warm", [orchnb.Step("s", "sim:rep-temp", "{{ input }}",
                                                 temperature=t)])

    orchnb.evaluate(chain(0.7), ROWS, expected="answer", repeats=2, progress=False, n_boot=0)
    assert seen == [0.7] * 12
    orchnb.evaluate(chain(0.2), ROWS, expected="answer", repeats=2, progress=False, n_boot=0)
    assert seen[12:] == [0.2] * 12  # not answered from the 0.7 calls' cache


def test_cache_salt_is_text_and_router_repeats_are_cached_per_repeat(small, make_router):
    from orchnb.engine import RunOptions

    with pytest.raises(orchnb.SpecError, match="cache_salt must be text"):
        RunOptions(cache_salt=3)
    router = make_router("rep-router", "rep-kw")
    orchnb.evaluate(router, small, repeats=2, progress=False, n_boot=0)
    again = orchnb.evaluate(router, small, repeats=2, progress=False, n_boot=0)
    assert [r.cached_calls for r in again.reports] == [len(small)] * 2


def test_compare_with_repeats_decides_by_a_cluster_bootstrap_over_rows():
    import numpy as np

    from orchnb.evals._decide import cluster_interval, paired_interval

    flaky, calls = _flaky("rep-cmp")
    steady = orchnb.Chain("steady", [orchnb.FunctionStep("say", lambda x: "a")])
    exp = orchnb.compare({"flaky": flaky, "steady": steady}, ROWS, expected="answer",
                         repeats=4, save=False, progress=False, n_boot=200)
    assert calls["n"] == 4 * 6 and exp.repeats == 4
    assert list(exp.repeated["flaky"].flipping.index) == [4, 5]
    means = exp.reports["flaky"].scores["exact"].tolist()
    assert means == [1, 1, 0, 0, 0.5, 0.5]  # each row's mean over its 4 repeats
    v = exp.verdicts.iloc[0]
    assert v["rows"] == 6 and "cluster bootstrap by row (4 repeats a row)" in v["test"]
    iv = cluster_interval(np.array(means), np.ones(6), 4, level=0.95, n_boot=2000)
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((iv.low * 100, iv.high * 100))
    # Resampling the 24 row × repeat cells as if independent would claim a narrower interval.
    cells = exp.repeated["flaky"].matrix().to_numpy().ravel()
    naive = paired_interval(cells, np.ones(cells.size), level=0.95)
    assert iv.high - iv.low > naive.high - naive.low
    assert "by paired cluster bootstrap by row" in exp.decision
    with pytest.raises(orchnb.SpecError, match="compare: repeats must be a whole number"):
        orchnb.compare([flaky, steady], ROWS, expected="answer", repeats=0, save=False)
