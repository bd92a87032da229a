"""The run timeline: one bar per span, nested, fan-out visible, errors red, bounded at scale."""

from __future__ import annotations

import pytest

from orchnb.viz import timeline


def _bars(fig):
    return [t for t in fig.data if t.type == "bar"]


def _n_bars(fig):
    return sum(len(t.y) for t in _bars(fig))


def test_timeline_draws_one_bar_per_span(agent_df):
    fig = timeline(agent_df)
    assert _n_bars(fig) == len(agent_df) == 13
    assert fig.layout.xaxis.title.text == "time since run start (ms)"
    assert "13 spans" in fig.layout.title.text


def test_timeline_rows_are_depth_first_in_start_order_and_indented(agent_df):
    fig = timeline(agent_df)
    labels = [a.text for a in fig.layout.annotations]
    assert labels[:4] == ["run researcher", "agent: researcher", "agent [iter 1]",
                          "anthropic:claude-3-5-haiku [iter 1]"]
    shifts = [a.xshift for a in fig.layout.annotations]
    assert shifts[1] - shifts[0] == shifts[2] - shifts[1] == 14  # one indent per depth


def test_timeline_step_with_single_call_shares_its_row(chain_df):
    fig = timeline(chain_df)
    rows = {y for t in _bars(fig) for y in t.y}
    assert _n_bars(fig) == len(chain_df) == 8
    assert len(rows) == 5  # run, pattern, 3 steps (each with its model call inside)
    inner = [t for t in _bars(fig) if t.width == 0.34]
    assert sum(len(t.y) for t in inner) == 3
    assert "outline · gpt-4o-mini" in [a.text for a in fig.layout.annotations]


def test_timeline_shows_parallel_fanout(mapreduce_df):
    fig = timeline(mapreduce_df)
    model = next(t for t in _bars(fig) if t.name == "model")
    spans = [(b, b + x) for b, x in zip(model.base, model.x, strict=True)]
    peak = max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)
    assert peak == 10
    assert "up to 10 calls in parallel" in fig.layout.title.text


def test_timeline_marks_failed_spans_red(agent_df):
    fig = timeline(agent_df)
    err = next(t for t in _bars(fig) if t.name == "error")
    assert len(err.y) == 1
    assert err.marker.color == "#D62728"
    assert "search timed out" in err.hovertext[0]


def test_timeline_hover_has_model_tokens_and_cost(chain_df):
    fig = timeline(chain_df)
    hovers = [h for t in _bars(fig) for h in t.hovertext]
    draft = next(h for h in hovers if "claude-3-5-haiku" in h and "model ·" in h)
    assert "tokens: 400 in / 150 out" in draft and "cost: $" in draft
    assert any("cost: <i>unpriced</i>" in h for h in hovers)


def test_timeline_defaults_to_latest_run_and_rejects_unknown(session_df):
    assert "run agent-1" in timeline(session_df).layout.title.text
    assert "run router-3" in timeline(session_df, "router-3").layout.title.text
    with pytest.raises(ValueError, match="'nope' is not in the trace"):
        timeline(session_df, "nope")


def test_timeline_colour_by_model(chain_df):
    fig = timeline(chain_df, color="model")
    names = {t.name for t in _bars(fig)}
    assert {"openai:gpt-4o-mini", "anthropic:claude-3-5-haiku", "openai:ft-custom"} <= names
    with pytest.raises(ValueError, match="color must be"):
        timeline(chain_df, color="bogus")


def test_timeline_100k_span_run_collapses_fanout_and_stays_small(big_run):
    assert len(big_run) > 100_000
    fig = timeline(big_run)
    assert _n_bars(fig) < 20
    band = next(t for t in _bars(fig) if t.name.endswith("(collapsed)"))
    assert band.text == ("×50,000",)
    assert len(fig.to_json()) < 200_000
    assert fig.layout.xaxis.title.text == "time since run start (s)"  # long run: seconds


def test_timeline_minimum_bar_width_stays_inside_the_parent(build):
    """0 ms spans get a visible minimum width, but a child at the very end of its run is
    clamped to the run's end instead of drawing past it."""
    b = build.Builder("tiny", "tiny")
    p = b.span(b.root, "pattern", "chain", "tiny", 0.0, 0.002)
    s = b.span(p, "step", "chain", "last", 0.002, 0.002)  # ends exactly with the run
    b.span(s, "tool", "chain", "last", 0.002, 0.002, tool="t")
    b.span(p, "step", "chain", "first", 0.0, 0.0)
    df = build.frame(b.close(0.002))
    fig = timeline(df)
    run = next(t for t in _bars(fig) if t.name == "run")
    run_end = run.base[0] + run.x[0]
    assert run_end == pytest.approx(2.0, abs=1e-3)  # the run's own bar is not stretched
    for bar in _bars(fig):
        for base, width in zip(bar.base, bar.x, strict=True):
            assert width > 0
            assert base + width <= run_end + 1e-9, (bar.name, base, width)


def test_timeline_says_when_its_calls_were_simulated(build):
    b = build.Builder("sim-run", "sim")
    s = b.span(b.root, "step", "chain", "a", 0.0, 0.01)
    b.model(s, "chain", 0.0, 0.01, "sim:echo", 3, 3)
    df = build.frame(b.close(0.01))
    notes = [a.text for a in timeline(df).layout.annotations if "simulated" in a.text]
    assert notes and "sim:" in notes[0]


def test_timeline_of_real_calls_does_not_claim_simulation(chain_df):
    assert not [a for a in timeline(chain_df).layout.annotations if "simulated" in a.text]
