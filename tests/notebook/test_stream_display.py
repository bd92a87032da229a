"""In a real kernel: a streaming pipeline run in a sync cell shows its tokens as they arrive
(a display updated in place, throttled to ~10/s), then the run's own output replaces them."""

from __future__ import annotations

import time

import pytest

from orchnb.notebook._stream_display import LiveText

pytestmark = pytest.mark.slow

CELL = """
%load_ext orchnb
import orchnb
orchnb.SimModel("typist", default=" ".join(f"word{i}" for i in range(40)),
                latency=1.2).register()
pipe = orchnb.Chain("live", [orchnb.Step("write", "sim:typist", "{{ input }}")],
                    cache=False, stream=True)
run = pipe("go")
run
"""


def test_a_streaming_run_updates_its_cell_live_then_shows_the_run(tmp_path):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env={
        "ORCHNB_HOME": str(tmp_path), "PATH": __import__("os").environ["PATH"]})
    try:
        msg_id = kc.execute(CELL)
        events: list[tuple[float, str, str]] = []
        deadline = time.time() + 60
        while time.time() < deadline:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind in ("display_data", "update_display_data", "execute_result"):
                events.append((time.time(), kind, content["data"].get("text/html", "")))
            elif kind == "error":
                pytest.fail("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    kinds = [k for _, k, _ in events]
    assert kinds[0] == "display_data" and "update_display_data" in kinds
    assert kinds[-1] == "execute_result" and "word39" in events[-1][2]
    live = [(t, h) for t, k, h in events if k != "execute_result" and h]
    assert len(live) >= 4  # the text grew in several visible steps...
    assert len(live) <= 1.2 / 0.1 + 3  # ...at most ~10 redraws a second
    lengths = [h.count("word") for _, h in live]
    assert lengths == sorted(lengths) and lengths[0] < 40
    assert all("mathjax_ignore" in h for _, h in live)


def test_live_text_restarts_a_retried_call_and_escapes_html():
    span = type("S", (), {"span_id": "r.1", "step": "a"})()
    live = LiveText(run=None)
    live.on_stream_delta(span=span, text="<b>half", attempt=1)
    live.on_stream_delta(span=span, text="whole", attempt=2)
    out = live.html()
    assert "whole" in out and "half" not in out and "<b>half" not in out
