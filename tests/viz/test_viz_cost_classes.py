"""Cost split by token class, and the prompt cache's hit rate and saving per step: a cached
prompt chain run twice through both SDKs against the loopback FakeProvider."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from orchnb import Chain, Step
from orchnb.viz import class_costs, class_table, cost, summary, summary_table

M = 1_000_000
LONG = "Policy clause. " * 1500  # over Anthropic's 4096-token minimum for claude-haiku-4-5


@pytest.fixture
def two_runs(fake_env):
    chain = Chain("levers", [
        Step("claude", "anthropic:claude-haiku-4-5", "Q: {{ input }}", system=LONG,
             cache_prompt=True),
        Step("gpt", "openai:gpt-5-mini", "{{ input }}", system=LONG, cache_prompt=True),
    ], cache=False)
    return chain("first"), chain("second")


def test_second_run_shows_the_hit_and_the_saving_per_step(two_runs):
    first, second = two_runs
    s1, s2 = summary(first.trace.df, by="step"), summary(second.trace.df, by="step")
    assert s1.loc["claude", "cache_hit_rate"] == 0 and s1.loc["claude", "cache_write_tokens"] > 0
    # the write costs 25% more than plain input: the first run pays for the second's hit
    assert s1.loc["claude", "cache_saved_usd"] < 0
    assert s2.loc["claude", "cache_hit_rate"] > 0.99 and s2.loc["gpt", "cache_hit_rate"] > 0.9
    row = second.trace.df.query("kind == 'model' and step == 'claude'").iloc[0]
    # claude-haiku-4-5: the same call uncached would be all input at $1/MTok; the hit is $0.10
    uncached = (row.input_tokens * 1 + row.output_tokens * 5) / M
    assert s2.loc["claude", "cache_saved_usd"] == pytest.approx(uncached - row.cost_usd)
    assert s2.loc["claude", "cache_saved_usd"] == pytest.approx(row.cached_tokens * 0.9 / M)
    both = summary(pd.concat([first.trace.df, second.trace.df], ignore_index=True), by="step")
    assert both.loc["claude", "saved_usd"] > 0  # the two runs together: the write paid off
    html = summary_table(second.trace.df, by="step").to_html()
    assert "cost levers by step" in html and "saved" in html


def test_the_split_adds_up_to_the_recorded_cost(two_runs):
    df = pd.concat([r.trace.df for r in two_runs], ignore_index=True)
    parts = class_costs(df)
    calls = df[df.kind == "model"]
    split = parts[[c for c in parts.columns if c not in ("uncached_usd", "list_usd")]]
    assert split.sum(axis=1).to_numpy() == pytest.approx(calls.cost_usd.to_numpy())
    t = class_table(df, by="model").set_index("model")
    assert t.loc["claude-haiku-4-5", "cache_write_usd"] > 0
    assert t.loc["gpt-5-mini", "cache_read_usd"] > 0
    names = [trace.name for trace in cost(df, color="class").data]
    assert {"input", "output", "cache read", "cache write (5 min)"} <= set(names)


def test_unknown_prices_stay_unknown_in_the_split(fake_env):
    run = Chain("u", [Step("a", "openai:gpt-4o-mini", "{{ input }}", service_tier="flex")],
                cache=False)("q")  # the table has no flex rate for gpt-4o-mini
    parts = class_costs(run.trace.df)
    assert parts.isna().all(axis=None)
    t = class_table(run.trace.df)
    assert math.isnan(t.loc[0, "cost_usd"]) and math.isnan(t.loc[0, "saved_usd"])


def test_run_summary_shows_the_prompt_cache_like_the_step_table(two_runs):
    df = pd.concat([r.trace.df for r in two_runs], ignore_index=True)
    runs = summary(df)
    first, second = (runs.loc[r.id] for r in two_runs)
    for run, row in zip(two_runs, (first, second)):
        steps = summary(run.trace.df, by="step")
        assert row["cache_saved_usd"] == pytest.approx(steps["cache_saved_usd"].sum())
        calls = run.trace.df.query("kind == 'model'")
        assert row["cache_hit_rate"] == pytest.approx(
            calls["cached_tokens"].sum() / calls["input_tokens"].sum())
    assert first["cache_saved_usd"] < 0 < second["cache_saved_usd"]  # the write, then the hit
    html = summary_table(df).to_html()
    assert "cache_saved_usd" in html and "%" in html


def test_run_summary_keeps_an_unknown_saving_unknown(fake_env):
    chain = Chain("u", [Step("a", "openai:gpt-4o-mini", "{{ input }}", system=LONG,
                             cache_prompt=True, service_tier="flex")], cache=False)
    chain("one")
    run = chain("two")  # a hit on a model the table has no flex rate for
    row = summary(run.trace.df).iloc[0]
    assert row["cache_hit_rate"] > 0 and math.isnan(row["cache_saved_usd"])
    assert "read from cache, saving unpriced" in repr(run)
