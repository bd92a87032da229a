"""Every notebook in notebooks/ runs top to bottom offline (sim: models), on what the project ships,
and tells the same story every time it runs."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))


def code_cells(path: Path) -> list[str]:
    # json, not nbformat: importing nbformat's validator takes seconds (jsonschema's formats)
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def text_outputs(path: Path) -> list[str]:
    """Each code cell's printed and plain-text outputs, in order."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return ["\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                      for o in c.get("outputs", []))
            for c in nb.cells if c.cell_type == "code"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path, tmp_path, monkeypatch):
    import nbformat
    from run_notebook import run

    monkeypatch.chdir(tmp_path)
    executed = run(path, tmp_path / "out", timeout=300)
    nb = nbformat.read(executed, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert executed.with_suffix(".html").stat().st_size > 10_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_needs_nothing_beside_the_project(path):
    # ../shared (real data sets) is there in CI but not in a user's fresh clone: a notebook may
    # use it only in a cell that checks it is there first.
    for source in code_cells(path):
        if "shared/" in source:
            assert ".exists()" in source, f"{path.name} reads ../shared without checking:\n{source}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_imports_only_public_names(path):
    # A notebook is what users copy: orchnb.patterns._spec / _plans are not for them (issue 24).
    private = [line for source in code_cells(path) for line in source.splitlines()
               if re.search(r"\borchnb(\.\w+)*\._\w", line)]
    assert not private, private


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_starts_from_a_fresh_home(path):
    # Otherwise a second run answers from the response cache and shows other costs and budgets.
    first = code_cells(path)[0]
    assert re.search(r'os\.environ\["ORCHNB_HOME"\] = tempfile\.mkdtemp\(', first), first


@pytest.mark.slow
def test_quickstart_tells_the_same_story_twice(tmp_path, monkeypatch):
    """`make demo` twice: same costs, same budget stop (the default home persists in between)."""
    from run_notebook import run

    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook = shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", folder)
    monkeypatch.delenv("ORCHNB_HOME")  # as for a user: the default .orchnb/ beside the notebook
    stories = []
    for attempt in ("first", "second"):
        outputs = text_outputs(run(Path(notebook), tmp_path / attempt, timeout=300))
        text = "\n".join(outputs)
        stories.append((re.findall(r"\$\d+\.\d+", text), re.findall(r"stopped: .*", text)))
    assert stories[0] == stories[1]
    costs, stops = stories[0]
    assert stops and costs[0] != "$0.000000", stories[0]


def test_the_quickstart_has_a_papermill_parameters_cell_that_feeds_its_runs():
    nb = json.loads((ROOT / "notebooks" / "quickstart.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in code]
    tagged = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    params = sources[tagged[0]]
    assert re.match(r"doc = ", params)
    # papermill puts `doc = <value>` right after that cell: every use of doc comes later.
    uses = [i for i, c in enumerate(sources) if re.search(r"\bdoc\b", c) and i != tagged[0]]
    assert uses and min(uses) > tagged[0]
    # A plain statement papermill can override: no other names defined in that cell.
    assert not re.search(r"^(?!doc\b)\w+ =", params, re.M)


@pytest.mark.parametrize("preset", [None, "png"])
def test_load_ext_keeps_charts_in_html_exports_unless_the_user_chose(preset):
    import subprocess

    code = ("import os\nfrom IPython.testing.globalipapp import start_ipython\n"
            "ip = start_ipython(); ip.run_line_magic('load_ext', 'orchnb')\n"
            "import plotly.io as pio, plotly.graph_objects as go\n"
            "print(pio.renderers.default)\n"
            "print(sorted(pio.renderers._build_mime_bundle(go.Figure().to_dict())))\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "PLOTLY_RENDERER"}
    if preset:
        env["PLOTLY_RENDERER"] = preset
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    lines = out.stdout.strip().splitlines()
    assert lines, out.stderr
    if preset:
        assert lines[0] == preset
    else:
        assert lines[0] == "plotly_mimetype+notebook_connected"
        assert "text/html" in lines[1] and "application/vnd.plotly.v1+json" in lines[1]



def test_the_mapreduce_notebooks_book_summary_starts_from_the_story_not_the_title_page(
        monkeypatch, tmp_path):
    # Issue 24: the summary was the Gutenberg title line ("Frankenstein; or, the Modern ...").
    # The summary's first sentence is the first chunk's (the sim summariser keeps first
    # sentences); running the whole book takes ~40 s here, so only that chunk is summarised.
    from types import SimpleNamespace

    from orchnb.patterns import split_text

    monkeypatch.setenv("ORCHNB_HOME", str(tmp_path))  # restored after the cell sets its own
    cells = code_cells(ROOT / "notebooks" / "mapreduce.ipynb")
    run_cell = next(i for i, c in enumerate(cells) if c.startswith("run = book(text)"))
    scope: dict = {}
    for source in cells[:run_cell]:
        assert not re.search(r"^\s*[%!]", source, re.M), source  # plain Python only
        exec(compile(source, "mapreduce.ipynb", "exec"), scope)
    first = split_text(scope["text"], chunk_tokens=1500, overlap_tokens=100)[0]
    assert first.startswith("Letter 1")
    prompt = "Summarize this passage in one sentence:\n" + first
    said = scope["first_sentence"](SimpleNamespace(messages=[SimpleNamespace(content=prompt)]))
    assert "Gutenberg" not in said and "Prometheus" not in said and "Shelley" not in said, said
