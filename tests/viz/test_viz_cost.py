"""Token and USD charts: sums over calls only, unpriced calls shown as unpriced, never $0."""

from __future__ import annotations

import math

import pytest

from orchnb.viz import cost, cost_table, cumulative_cost, tokens
from orchnb.viz._style import span_hover


def test_cost_table_sums_calls_and_counts_unpriced(chain_df):
    t = cost_table(chain_df).set_index("step")
    assert t.loc["outline", "cost_usd"] == pytest.approx(400 * 0.15e-6 + 150 * 0.6e-6)
    assert math.isnan(t.loc["polish", "cost_usd"])  # unpriced, not 0
    assert t.loc["polish", "unpriced_calls"] == 1
    assert t["calls"].sum() == 3  # step and pattern spans never count twice
    by_model = cost_table(chain_df, by="model").set_index("model")
    assert by_model.loc["openai:ft-custom", "unpriced_calls"] == 1


def test_cost_figure_shows_unpriced_calls_as_unpriced(chain_df):
    fig = cost(chain_df)
    bars = next(t for t in fig.data if t.type == "bar")
    assert "polish" not in bars.y  # no $0 bar for an unknown price
    assert set(bars.y) == {"outline", "draft"}
    up = next(t for t in fig.data if t.name == "unpriced calls (price unknown)")
    assert up.y == ("polish",) and "1 unpriced" in up.text[0]
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "1 unpriced call" in notes
    assert "+ 1 unpriced call" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "cost (USD)" and fig.layout.xaxis.tickprefix == "$"


def test_cost_by_model_and_stacked_by_model(session_df):
    fig = cost(session_df, by="model")
    bars = next(t for t in fig.data if t.type == "bar")
    got = dict(zip(bars.y, bars.x, strict=True))
    answers, reduce = 10 * (600 * 2.5e-6 + 250 * 10e-6), 4000 * 2.5e-6 + 400 * 10e-6
    assert got["openai:gpt-4o"] == pytest.approx(answers + reduce)
    stacked = cost(session_df, color="model")
    names = {t.name for t in stacked.data if t.type == "bar"}
    assert {"openai:gpt-4o", "openai:gpt-4o-mini", "anthropic:claude-3-5-haiku"} <= names
    total = sum(sum(t.x) for t in stacked.data if t.type == "bar")
    assert total == pytest.approx(cost_table(session_df)["cost_usd"].sum())


def test_tokens_stack_uncached_cached_and_output(router_df):
    fig = tokens(router_df)
    parts = {t.name: dict(zip(t.y, t.x, strict=True)) for t in fig.data}
    assert parts["input (uncached)"]["billing_answer"] == 5 * 400
    assert parts["input (cached)"]["billing_answer"] == 5 * 200
    assert parts["output"]["billing_answer"] == 5 * 250
    assert fig.layout.xaxis.title.text == "tokens"
    assert fig.layout.barmode == "stack"


def test_tokens_flag_calls_with_estimated_usage(chain_df):
    assert "(" not in tokens(chain_df).layout.title.text  # nothing estimated, nothing said
    df = chain_df.copy()
    df["usage_estimated"] = (df["step"] == "draft") & (df["kind"] == "model")
    t = cost_table(df).set_index("step")
    assert t.loc["draft", "estimated_calls"] == 1 and t.loc["outline", "estimated_calls"] == 0
    fig = tokens(df)
    assert "(1 estimated)" in fig.layout.title.text
    bar = fig.data[0]
    hatch = dict(zip(bar.y, bar.marker.pattern.shape, strict=True))
    assert hatch["draft"] == "/" and hatch["outline"] == ""
    notes = dict(zip(bar.y, bar.customdata, strict=True))
    assert "estimated: 1 of 1 calls" in notes["draft"] and notes["outline"] == ""
    row = next(df[(df.kind == "model") & (df.step == "draft")].itertuples())
    assert "(estimated: no usage reported)" in span_hover(row)


def test_cumulative_cost_over_runs(session_df):
    fig = cumulative_cost(session_df)
    line = fig.data[0]
    assert len(line.x) == 13
    assert line.y[-1] == pytest.approx(cost_table(session_df)["cost_usd"].sum())
    assert list(line.y) == sorted(line.y)
    ring = next(t for t in fig.data if t.name == "run with unpriced calls")
    assert list(ring.x) == [1]  # the chain run, first by start
    assert {t.name for t in fig.data} >= {"summarize", "support", "digest", "researcher"}
    assert fig.layout.yaxis.title.text == "cumulative cost (USD)"
    assert "1 unpriced call in 1 run" in fig.layout.annotations[0].text


def test_cumulative_cost_thins_and_uses_webgl_for_many_runs(big_session):
    fig = cumulative_cost(big_session, max_points=500)
    assert fig.data[0].type == "scattergl"
    assert len(fig.data[0].x) <= 500
    assert fig.data[0].y[-1] == pytest.approx(1000 * 49 * 0.0001)
    assert len(fig.to_json()) < 200_000


def test_cost_charts_on_100k_spans_stay_small(big_session):
    for fig in (cost(big_session), tokens(big_session, by="model")):
        assert len(fig.to_json()) < 50_000


@pytest.mark.parametrize("top", [3.5e-6, 0.00035, 0.042, 1.5, 2_400.0])
def test_money_axes_use_plain_dollar_ticks_not_si_prefixes(top):
    """Plotly's default tick labels read "$100µ"; money axes get enough fixed decimals for ticks
    a twentieth of the largest value apart (trailing zeros trimmed by ``~``)."""
    from orchnb.viz._style import money_axis

    axis = money_axis([0.0, top, float("nan")])
    assert axis["tickprefix"] == "$" and axis["exponentformat"] == "none"
    decimals = int(axis["tickformat"].removeprefix(",.").removesuffix("~f"))
    step = top / 20
    assert decimals >= 2 and float(f"{step:.{decimals}f}") > 0  # the smallest tick is not $0
    assert money_axis([])["tickformat"] == ",.2~f"


def test_cost_charts_format_their_money_axes(session_df):
    for fig, axis in ((cost(session_df), "xaxis"), (cumulative_cost(session_df), "yaxis")):
        ax = fig.layout[axis]
        assert ax.tickprefix == "$" and ax.tickformat.endswith("~f")
        assert ax.exponentformat == "none"


def test_hover_text_shows_tiny_costs_in_full(chain_df, session_df):
    df = chain_df.copy()
    calls = df.index[(df.kind == "model") & df.cost_usd.notna()]
    df.loc[calls, "cost_usd"] = 0.000021  # a cheap call: "$0.0000" would hide it
    figs = [cost(df), cost(df, color="model"), cumulative_cost(df), cumulative_cost(session_df)]
    for fig in figs:
        for trace in fig.data:
            assert ":.4f" not in (trace.hovertemplate or "")
    bars = next(t for t in figs[0].data if t.type == "bar")
    assert "cost %{text}" in bars.hovertemplate and "$0.000021" in bars.text
    stacked = next(t for t in figs[1].data if t.type == "bar")
    assert stacked.customdata[0][3] == "$0.000021"
