"""A streaming chain in a JupyterLab cell: the tokens show up while the cell runs, then the run's
own table takes their place (screenshots of both moments under tests/artifacts/streaming/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _jupyter import open_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "streaming"

CELLS = [
    "%load_ext orchnb\nimport orchnb\n"
    "words = ' '.join(f'token{i}' for i in range(60))\n"
    "orchnb.SimModel('typist', default=words, latency=4.0).register()\n"
    "orchnb.SimModel('editor', default='A tidy summary: ' + words[:200], latency=2.0).register()",
    "%%orch brief\npattern: chain\nstream: true\ncache: false\nsteps:\n"
    "  - name: draft\n    model: sim:typist\n    prompt: 'Draft about {{ input }}'\n"
    "  - name: polish\n    model: sim:editor\n    prompt: 'Polish: {{ steps.draft }}'\n",
    "brief('streaming in notebooks')",
]


def test_streamed_tokens_show_while_the_cell_runs(lab, browser_context):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = open_notebook(lab, browser_context, "streaming_test.ipynb", CELLS,
                         workspace="streaming", wait=False)
    live = page.locator(".orchnb-live-stream")
    try:
        live.wait_for(timeout=60_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "00-no-live-text.png"), full_page=True)
        raise
    page.wait_for_function(
        "() => { const e = document.querySelector('.orchnb-live-stream');"
        " return e && (e.textContent.match(/token/g) || []).length >= 10; }", timeout=30_000)
    middle = live.inner_text()
    page.screenshot(path=str(ARTIFACTS / "01-streaming-mid-run.png"), full_page=True)
    assert "draft" in middle and "token59" not in middle  # caught part-way through
    final = page.locator(".jp-RenderedHTML.jp-OutputArea-output", has_text="2 calls")
    final.wait_for(timeout=60_000)
    page.wait_for_selector(".orchnb-live-stream", state="detached", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "02-run-finished.png"), full_page=True)
    assert "2 calls" in final.inner_text()
    page.close()
