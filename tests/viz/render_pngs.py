"""Render every chart type to PNG (kaleido) for a visual check; not collected by pytest.

    BROWSER_PATH=/usr/bin/chromium .venv/bin/python tests/viz/render_pngs.py [OUT_DIR]

Writes to tests/artifacts/viz/ by default (ignored by git).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import conftest as fx  # noqa: E402  (the synthetic traces of the viz tests)
import pandas as pd  # noqa: E402

from orchnb import viz  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "artifacts" / "viz"
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
    session = fx.frame(fx.chain_run() + fx.router_runs() + fx.mapreduce_run() + fx.agent_run())
    evals = pd.DataFrame({
        "label": ["billing"] * 10 + ["technical"] * 8 + ["other"] * 4,
        "route": ["billing"] * 9 + ["technical"] * 7 + ["billing"] * 2 + ["other"] * 2
        + ["billing", "technical"],
    })
    big_run, big_session = fx.big_frame(1, 50_000), fx.big_frame(1000, 48)
    charts = {
        "timeline_mapreduce": (viz.timeline(session, "mapreduce-1"), 1100),
        "timeline_agent": (viz.timeline(session, "agent-1"), 1100),
        "timeline_chain_by_model": (viz.timeline(session, "chain-1", color="model"), 1100),
        "timeline_100k": (viz.timeline(big_run), 1100),
        "latency_by_step": (viz.latency(session), 1100),
        "latency_by_model": (viz.latency(session, by="model"), 1100),
        "latency_100k": (viz.latency(big_session, kind="all"), 1100),
        "cost_by_step": (viz.cost(session), 1100),
        "cost_by_model": (viz.cost(session, by="model"), 1100),
        "cost_by_step_and_model": (viz.cost(session, color="model"), 1100),
        "tokens_by_step": (viz.tokens(session), 1100),
        "tokens_by_model": (viz.tokens(session, by="model"), 1100),
        "cumulative_cost": (viz.cumulative_cost(session), 1100),
        "cumulative_cost_1000_runs": (viz.cumulative_cost(big_session), 1100),
        "routes": (viz.routes(session), 1000),
        "route_sankey": (viz.route_sankey(evals), 1000),
        "route_heatmap": (viz.route_heatmap(evals), 800),
        "graph_latency": (viz.graph(session), 1300),
        "graph_cost_router": (viz.graph(session[session.pipeline == "support"], color="cost"),
                              1000),
    }
    try:  # one browser for every image (kaleido >= 1.0); else one per write_image
        import kaleido

        kaleido.start_sync_server(silence_warnings=True)
        warnings.filterwarnings("ignore", message="The kopts argument is ignored")
    except (ImportError, AttributeError):
        kaleido = None
    try:
        for name, (fig, width) in charts.items():
            t = time.perf_counter()
            path = out / f"{name}.png"
            fig.write_image(path, width=width, scale=1)
            size = len(fig.to_json()) / 1e3
            print(f"{path}  {size:8.1f} kB json  {time.perf_counter() - t:.1f}s")
    finally:
        if kaleido is not None:
            kaleido.stop_sync_server(silence_warnings=True)
    (out / "summary_table.html").write_text(viz.summary_table(session).to_html())
    print(out / "summary_table.html")


if __name__ == "__main__":
    main()
