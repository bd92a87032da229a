"""Routing charts: counts per router, and true label → route as Sankey and heatmap."""

from __future__ import annotations

import pandas as pd
import pytest

from orchnb.viz import route_counts, route_heatmap, route_sankey, routes


def test_route_counts_per_router(session_df):
    t = route_counts(session_df)
    assert list(t["router"].unique()) == ["support · triage"]
    got = dict(zip(t["route"], t["count"], strict=True))
    assert got == {"billing": 5, "technical": 3, "other": 2}
    assert t["share"].sum() == pytest.approx(1.0)
    assert t.set_index("route").loc["billing", "mean_confidence"] == pytest.approx(
        (0.6 + 0.66 + 0.72 + 0.78 + 0.84) / 5)


def test_routes_bar_chart_for_one_router(router_df):
    fig = routes(router_df)
    bar = fig.data[0]
    assert dict(zip(bar.y, bar.x, strict=True)) == {"billing": 5, "technical": 3, "other": 2}
    assert bar.text[0] == "5 (50%)"
    assert fig.layout.xaxis.title.text == "decisions (count)"
    assert "router support · triage" in fig.layout.title.text


def test_routes_groups_several_routers(router_df):
    other = router_df.copy()
    other.loc[other.route.notna(), "pipeline"] = "support-v2"
    fig = routes(pd.concat([router_df, other]))
    assert {t.name for t in fig.data} == {"support · triage", "support-v2 · triage"}
    assert all(len(t.y) == 2 for t in fig.data)  # multicategory axis: (router, route)


def test_routes_without_routers_says_so(chain_df):
    assert "no router spans" in routes(chain_df).layout.annotations[0].text


def test_route_sankey_links_labels_to_routes(evals_df):
    fig = route_sankey(evals_df)
    sk = fig.data[0]
    assert sum(sk.link.value) == len(evals_df) == 22
    nodes = list(sk.node.label)
    flows = {(nodes[s], nodes[t]): v for s, t, v in
             zip(sk.link.source, sk.link.target, sk.link.value, strict=True)}
    assert flows[("billing (10)", "billing (12)")] == 9
    assert flows[("technical (8)", "billing (12)")] == 2
    wrong = sum(v for (a, b), v in flows.items() if a.split()[0] != b.split()[0])
    red = sum(v for v, c in zip(sk.link.value, sk.link.color, strict=True) if "214,39,40" in c)
    assert wrong == red == 5
    assert "accuracy 77% (n=22)" in fig.layout.title.text


def test_route_heatmap_counts_and_row_shares(evals_df):
    fig = route_heatmap(evals_df)
    hm = fig.data[0]
    rows, cols = list(hm.y), list(hm.x)
    assert rows == cols == ["billing", "other", "technical"]
    counts = hm.customdata
    assert counts[rows.index("billing")][cols.index("billing")] == 9
    assert hm.z[rows.index("technical")][cols.index("technical")] == pytest.approx(0.75)
    assert fig.layout.xaxis.title.text == "route taken"
    assert fig.layout.yaxis.title.text == "true label"
    raw = route_heatmap(evals_df, normalize=False).data[0]
    assert raw.z[0][0] == 9


def test_route_flow_counts_missing_routes(evals_df):
    ev = evals_df.copy()
    ev.loc[0, "route"] = None
    fig = route_heatmap(ev)
    assert "(no route)" in fig.data[0].x
