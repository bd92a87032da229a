"""evaluate / compare in batch mode through both SDKs: half the price in the trace and the
report, per-request failures as failed rows, live against batch side by side."""

from __future__ import annotations

import anthropic  # noqa: F401  (imported at collection, as the other SDK tests do)
import openai  # noqa: F401
import pandas as pd
import pytest

import orchnb
from orchnb import SpecError


def _echo(fake):
    fake.batches.delay = 0.0
    fake.responder = lambda r: r.last_user.split()[-1]


def _data(n: int) -> pd.DataFrame:
    words = [f"w{i}" for i in range(n)]
    return pd.DataFrame({"text": words, "answer": words})


def _pipe(model: str) -> orchnb.Chain:
    return orchnb.Chain("echo", [orchnb.Step("a", model, "echo {{ input }}", max_tokens=20)])


def test_500_row_eval_in_batch_mode_costs_half_of_live(fake_env):
    _echo(fake_env)
    pipe, data = _pipe("openai:gpt-4o-mini"), _data(500)
    batch = orchnb.evaluate(pipe, data, expected="answer", batch=True, cache=False,
                            progress=False)
    assert batch.mean() == 1.0 and batch.batch_calls == 500
    assert fake_env.batches.creates == 1
    spans = batch.run.trace.df.query("kind == 'model'")
    assert spans["batch"].all() and len(spans) == 500
    assert spans["cost_usd"].sum() == pytest.approx(batch.cost_usd)
    assert batch.cost_usd == pytest.approx(batch.list_usd / 2)
    assert batch.batch_saved_usd == pytest.approx(batch.list_usd / 2)
    assert "batch mode saved" in repr(batch) and "batch mode saved" in batch._repr_html_()
    # The same rows live (a sample: 500 live calls take seconds) cost the list price, row for
    # row, so the whole live eval costs twice the batch one.
    live = orchnb.evaluate(pipe, data.head(20), expected="answer", cache=False, progress=False)
    assert live.batch_calls == 0 and live.mean() == 1.0
    assert live.scores["cost_usd"].tolist() == pytest.approx(
        batch.scores["list_usd"].head(20).tolist())
    assert live.scores["cost_usd"].tolist() == pytest.approx(
        (2 * batch.scores["cost_usd"].head(20)).tolist())


def test_anthropic_eval_with_failed_requests(fake_env):
    _echo(fake_env)
    fake_env.batches.fail_when(lambda r: r.last_user.endswith("w3"), "expired")
    report = orchnb.evaluate(_pipe("anthropic:claude-haiku-4-5"), _data(30), expected="answer",
                             batch=True, cache=False, progress=False)
    assert report.errors == 1
    bad = report.scores[report.scores["status"] != "ok"]
    assert bad["input"].tolist() == ["w3"] and "expired" in bad["error"].iloc[0]
    assert report.scores["exact"].sum() == 29
    assert report.cost_usd == pytest.approx(report.list_usd / 2)


def test_compare_live_against_batch(fake_env):
    _echo(fake_env)
    exp = orchnb.compare(_pipe("openai:gpt-4o-mini"), _data(20), expected="answer",
                         batch="both", progress=False, save=False)
    t = exp.table
    assert list(t.index) == ["echo · live", "echo · batch"]
    assert t.loc["echo · batch", "paid_usd"] == pytest.approx(t.loc["echo · live", "paid_usd"] / 2)
    assert t.loc["echo · batch", "cost_per_1k"] == pytest.approx(
        t.loc["echo · live", "cost_per_1k"])
    assert t.loc["echo · batch", "batch_calls"] == 20 and t.loc["echo · live", "batch_calls"] == 0
    assert t["p50_ms"].notna().all()  # latency side by side


def test_batch_option_is_checked():
    pipe, data = _pipe("sim:echo"), _data(3)
    with pytest.raises(SpecError, match="batch must be True or False, not 'both'"):
        orchnb.evaluate(pipe, data, expected="answer", batch="both")
    with pytest.raises(SpecError, match="cannot run on Ray"):
        orchnb.evaluate(pipe, data, expected="answer", batch=True, executor="ray")
    with pytest.raises(SpecError, match="or 'both'"):
        orchnb.compare([pipe, pipe], data, expected="answer", batch="always")


ROUTER = """\
pattern: router
classifier: {model: openai:gpt-4o-mini, prompt: "Classify: {{ input }}"}
routes:
  billing: {model: sim:echo, prompt: "{{ input }}"}
  other: {model: sim:echo, prompt: "{{ input }}"}
default: other
"""


def test_router_eval_in_batch_mode(fake_env):
    fake_env.batches.delay = 0.0
    fake_env.responder = lambda r: "billing" if "refund" in r.last_user else "other"
    data = pd.DataFrame({"text": [f"refund {i}" if i % 2 else f"hello {i}" for i in range(24)],
                         "label": ["billing" if i % 2 else "other" for i in range(24)]})
    report = orchnb.evaluate(orchnb.from_yaml(ROUTER, name="triage"), data, batch=True,
                             cache=False, progress=False)
    assert report.accuracy == 1.0 and fake_env.batches.creates == 1
    assert report.batch_calls == 24
    assert report.batch_saved_usd == pytest.approx(report.cost_usd)  # half: saved = paid
    assert "batch mode saved" in report._repr_html_()
