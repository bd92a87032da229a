"""The public surface: exports, docs, the df.orch accessor, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import plotly.graph_objects as go

import orchnb.viz as viz


def test_every_public_name_is_exported_and_documented_with_an_example():
    assert viz.__all__ == sorted(viz.__all__)
    for name in viz.__all__:
        obj = getattr(viz, name)
        if isinstance(obj, str):  # a constant (NO_ROUTE): documented where it is defined
            continue
        assert obj.__doc__ and ">>>" in obj.__doc__, name


def test_accessor_and_trace_plots_draw_the_common_charts(session_df):
    plots = session_df.orch
    assert isinstance(plots, viz.TracePlots)
    assert "13 runs" in repr(plots)
    for fig in (plots.timeline(), plots.latency(), plots.cost(), plots.tokens(),
                plots.cumulative_cost(), plots.routes(), plots.graph()):
        assert isinstance(fig, go.Figure) and fig.data
        assert fig.layout.template.layout.font.family.startswith("Inter")
    assert isinstance(plots.summary(), pd.DataFrame)
    assert plots.compare(["router-0", "router-1"]).attrs["first_divergence"] == "triage"
    assert "<table" in plots.table().to_html()


def test_charts_reject_frames_that_are_not_traces():
    import pytest

    with pytest.raises(ValueError, match="lacks column"):
        viz.cost(pd.DataFrame({"a": [1]}))


def test_import_orchnb_does_not_import_pandas_or_plotly():
    code = ("import sys, orchnb, orchnb.trace._export; "
            "print('pandas' in sys.modules, 'plotly' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_import_viz_does_not_import_plotly():
    code = "import sys, orchnb.viz; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_step_has_the_same_colour_in_every_chart(session_df):
    lat = {b.name: b.marker.color for b in viz.latency(session_df).data if b.type == "box"}
    bars = next(t for t in viz.cost(session_df).data if t.type == "bar")
    cost = dict(zip(bars.y, bars.marker.color, strict=True))
    tl = {t.name: t.marker.color for t in viz.timeline(session_df, "chain-1", color="step").data}
    for step in ("outline", "draft", "classify", "map"):
        assert lat[step] == cost[step]
    assert tl["outline"] == cost["outline"]
