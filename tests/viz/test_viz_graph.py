"""The pattern graph derived from traces: nodes, edges, metrics, layout and colouring."""

from __future__ import annotations

import math

import pytest

from orchnb.viz import graph, graph_data


def _node(nodes, name):
    return nodes[nodes["name"] == name].iloc[0]


def test_graph_data_folds_fanout_and_iterations(session_df):
    nodes, _ = graph_data(session_df)
    m = _node(nodes, "map")
    assert (m.instances, m.repeats, m.runs, m.depth) == (50, 50, 1, 2)
    assert _node(nodes, "agent").repeats == 4
    assert _node(nodes, "tool search").kind == "tool"
    assert "model" not in set(nodes["kind"])  # calls fold into their step
    assert _node(nodes, "classify").instances == 10


def test_graph_data_edges_follow_control_flow(router_df, chain_df, build):
    _, edges = graph_data(router_df)
    nodes, _ = graph_data(router_df)
    name = dict(zip(nodes.index, nodes["name"], strict=True))
    then = {(name[a], name[b]): c for a, b, k, c in edges.itertuples(index=False) if k == "then"}
    assert then == {("classify", "billing_answer"): 5, ("classify", "technical_answer"): 3,
                    ("classify", "other_answer"): 2}
    contains = edges[edges.kind == "contains"]
    assert len(contains) == len(nodes) - 1  # a tree
    nodes, edges = graph_data(build.frame(build.chain_run("a") + build.chain_run("b", t=9)))
    name = dict(zip(nodes.index, nodes["name"], strict=True))
    flow = [(name[a], name[b]) for a, b, k, _ in edges.itertuples(index=False) if k == "then"]
    assert flow == [("outline", "draft"), ("draft", "polish")]  # runs are not chained


def test_graph_data_cost_and_latency_per_node(chain_df, mapreduce_df):
    nodes, _ = graph_data(chain_df)
    assert math.isnan(_node(nodes, "polish").mean_cost_usd)  # only an unpriced call
    assert _node(nodes, "polish").unpriced_calls == 1
    assert _node(nodes, "outline").mean_cost_usd == pytest.approx(400 * 0.15e-6 + 150 * 0.6e-6)
    assert _node(nodes, "draft").mean_ms == pytest.approx(1400)
    mr, _ = graph_data(mapreduce_df)
    assert _node(mr, "split").mean_cost_usd == 0  # no calls: free, not unpriced
    assert _node(mr, "map").mean_cost_usd == pytest.approx(300 * 0.15e-6 + 80 * 0.6e-6)


def test_graph_figure_layout_is_hierarchical(session_df):
    fig = graph(session_df)
    nodes = [t for t in fig.data if t.mode == "markers+text"]
    assert {t.name for t in nodes} == {"run", "pattern", "step", "tool"}
    ys = {t.name: set(t.y) for t in nodes}
    assert ys["run"] == {0} and ys["pattern"] == {-1} and ys["step"] == {-2}
    assert ys["tool"] == {-3}
    assert fig.layout.coloraxis.colorbar.title.text == "mean latency (ms)"
    assert any("×50" in text for t in nodes for text in t.text)
    assert sum(len(t.x) for t in nodes) == len(graph_data(session_df)[0])


def test_graph_coloured_by_cost_marks_unpriced(chain_df):
    fig = graph(chain_df, color="cost")
    assert fig.layout.coloraxis.colorbar.title.text == "mean cost (USD)"
    steps = next(t for t in fig.data if t.name == "step")
    polish = list(steps.text).index("polish")
    assert steps.marker.color[polish] < 0  # below cmin: drawn grey, not as $0
    assert steps.marker.line.color[polish] == "#8C8C8C"
    assert "unpriced" in fig.layout.annotations[-1].text
    with pytest.raises(ValueError, match="color must be"):
        graph(chain_df, color="tokens")


def test_graph_of_one_run(session_df):
    fig = graph(session_df, run_id="router-0")
    names = {n for t in fig.data if t.mode == "markers+text" for n in t.text}
    assert "billing_answer" in names and "technical_answer" not in names


def test_graph_of_100k_spans_is_small(big_session):
    fig = graph(big_session)
    assert len(fig.to_json()) < 100_000
