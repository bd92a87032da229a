"""The quickstart beside the tools people already use: papermill's CLI overrides its `parameters`
cell, and nbconvert's CLI turns the executed copy into HTML that still draws its Plotly charts.

One papermill run (about 10 s) feeds both tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
# The quickstart's classifier answers "contract" for its default document (an agreement);
# this one is a report, so the first run's output shows whether the parameter got in.
DOC = "Quarterly sales in the north grew 4%. Margins held."


def _cli(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    if not exe.exists():
        pytest.skip(f"{name} is not installed: pip install -e '.[dev]'")
    return str(exe)


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    """`papermill quickstart.ipynb out.ipynb -p doc DOC`, as a user types it (no renderer set)."""
    out = tmp_path_factory.mktemp("papermill") / "out.ipynb"
    env = {k: v for k, v in os.environ.items() if k != "PLOTLY_RENDERER"}
    done = subprocess.run([_cli("papermill"), str(QUICKSTART), str(out), "-p", "doc", DOC,
                           "--cwd", str(out.parent), "--no-progress-bar"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_papermill_parameter_changes_the_quickstarts_run(executed):
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    injected = [c for c in code if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and DOC in injected[0].source
    first_run = next(c for c in code if c.source.startswith("run = brief(doc)"))
    shown = first_run.outputs[0]["data"]["text/plain"]
    assert "output='report'" in shown, shown  # the default document gives 'contract'
    assert "agreement" in next(c for c in code if "parameters" in c.metadata.get("tags", [])
                               ).source
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]


def test_nbconvert_html_of_the_executed_notebook_keeps_its_charts(executed, tmp_path):
    copy = Path(shutil.copy(executed, tmp_path / "executed.ipynb"))
    done = subprocess.run([_cli("jupyter"), "nbconvert", "--to", "html", str(copy)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    html = copy.with_suffix(".html").read_text(encoding="utf-8")
    # The timeline chart: Plotly's div and the script that draws it, plotly.js from its CDN.
    assert re.search(r'<div [^>]*class="plotly-graph-div"', html)
    assert "Plotly.newPlot(" in html
    assert re.search(r"cdn\.plot\.ly/plotly-[\d.]+\.min\.js", html)
