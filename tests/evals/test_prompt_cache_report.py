"""What the prompt cache saved, in the eval reports and the comparison table: an eval of a
``cache_prompt=True`` step through the Anthropic SDK against the loopback FakeProvider, checked
against the trace's own split (``class_costs``) and against the price list by hand."""

from __future__ import annotations

import math

import anthropic  # noqa: F401  (imported at collection, as the other SDK tests do)
import openai  # noqa: F401
import pandas as pd
import pytest

import orchnb
from orchnb.trace import class_costs

M = 1_000_000
LONG = "Policy clause. " * 1500  # over Anthropic's 4096-token minimum for claude-haiku-4-5


def _pipe(model: str, **step) -> orchnb.Chain:
    return orchnb.Chain("faq", [orchnb.Step("a", model, "Q: {{ input }}", system=LONG,
                                            max_tokens=20, **step)])


def _data(n: int) -> pd.DataFrame:
    words = [f"w{i}" for i in range(n)]
    return pd.DataFrame({"text": words, "answer": words})


def test_eval_of_a_cached_prompt_step_shows_hit_rate_and_saving(fake_env):
    pipe = _pipe("anthropic:claude-haiku-4-5", cache_prompt=True)
    report = orchnb.evaluate(pipe, _data(10), expected="answer", cache=False,
                             concurrency=1, progress=False)
    calls = report.run.trace.df.query("kind == 'model'")
    assert len(calls) == 10
    # by hand from the trace: reads / input tokens, and the uncached price minus what was paid
    rate = calls["cached_tokens"].sum() / calls["input_tokens"].sum()
    saved = (class_costs(calls)["uncached_usd"] - calls["cost_usd"]).sum()
    assert 0.5 < rate < 1 and report.prompt_cache_hit_rate == pytest.approx(rate)
    assert report.prompt_cache_saved_usd == pytest.approx(saved)
    # and from the price list: claude-haiku-4-5 reads are $0.90/MTok under input, 5-min
    # writes $0.25/MTok over it; one write (the first row), nine reads
    reads, writes = calls["cached_tokens"].sum(), calls["cache_write_tokens"].sum()
    assert writes > 4096 and reads == 9 * writes
    assert saved == pytest.approx((reads * 0.90 - writes * 0.25) / M)
    note = f"prompt cache: {rate:.0%} of prompt tokens read from cache, saved "
    assert note in repr(report) and note in report._repr_html_()
    assert orchnb.trace.fmt_usd(saved) in report.prompt_cache_note
    assert report.scores["prompt_cache_saved_usd"].iloc[0] < 0  # the write, not paid off yet


def test_comparison_table_has_the_prompt_cache_columns(fake_env):
    exp = orchnb.compare({"cached": _pipe("anthropic:claude-haiku-4-5", cache_prompt=True),
                          "plain": _pipe("anthropic:claude-haiku-4-5")},
                         _data(4), expected="answer", cache=False, concurrency=1,
                         progress=False, save=False)
    t = exp.table
    assert t.loc["cached", "prompt_cache_hit_rate"] > 0.5
    assert t.loc["cached", "prompt_cache_saved_usd"] == pytest.approx(
        exp.reports["cached"].prompt_cache_saved_usd)
    assert t.loc["plain", "prompt_cache_hit_rate"] == 0
    assert t.loc["plain", "prompt_cache_saved_usd"] == 0
    assert "prompt cache" not in repr(exp.reports["plain"])


def test_an_unpriced_model_shows_the_saving_as_unpriced(fake_env):
    # gpt-4o-mini has no flex rate in the table: its calls are unpriced, its cache hits real
    pipe = _pipe("openai:gpt-4o-mini", cache_prompt=True, service_tier="flex")
    report = orchnb.evaluate(pipe, _data(3), expected="answer", cache=False, concurrency=1,
                             progress=False)
    assert report.prompt_cache_hit_rate > 0 and math.isnan(report.prompt_cache_saved_usd)
    assert "read from cache, saving unpriced" in repr(report)
    assert "saving unpriced" in report._repr_html_()
    assert math.isnan(report.row()["prompt_cache_saved_usd"])


def test_router_report_shows_the_prompt_cache(fake_env):
    # the route answers with a cached prompt (the whole pipeline runs: full_pipeline=True)
    router = orchnb.Router("triage", classifier=lambda t: "billing", routes={
        "billing": _pipe("anthropic:claude-haiku-4-5", cache_prompt=True),
        "other": orchnb.Step("other", "sim:echo", "{{ input }}")}, default="other")
    data = pd.DataFrame({"text": [f"refund {i}" for i in range(4)], "label": ["billing"] * 4})
    report = orchnb.evaluate(router, data, full_pipeline=True, cache=False, concurrency=1,
                             progress=False)
    calls = report.run.trace.df.query("kind == 'model'")
    saved = (class_costs(calls)["uncached_usd"] - calls["cost_usd"]).sum()
    assert report.prompt_cache_saved_usd == pytest.approx(saved) and saved > 0
    assert report.summary["prompt_cache_hit_rate"].iloc[0] == pytest.approx(
        calls["cached_tokens"].sum() / calls["input_tokens"].sum())
    assert "of prompt tokens read from cache, saved" in report._repr_html_()
