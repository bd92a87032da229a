"""Execute notebooks top to bottom and write the executed copy and an HTML copy.

    python scripts/run_notebook.py notebooks/quickstart.ipynb [more.ipynb ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def run(path: Path, out_dir: Path, timeout: int = 600) -> Path:
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    # Plotly: the mimetype for JupyterLab plus self-contained HTML for the static copy.
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype+notebook")
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    # The notebooks keep their traces and response cache in a fresh temporary folder (first
    # cell); the kernel's TMPDIR puts those folders here, removed once the notebook has run.
    with tempfile.TemporaryDirectory(prefix="orchnb-notebook-") as tmp:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, store_widget_state=True,
                       resources={"metadata": {"path": str(path.parent)}}
                       ).execute(env={**os.environ, "TMPDIR": tmp})
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    nbformat.write(nb, executed)
    body, _ = HTMLExporter().from_notebook_node(nb)
    executed.with_suffix(".html").write_text(body, encoding="utf-8")
    print(f"{path} ran in {time.perf_counter() - started:.1f}s -> {executed} and "
          f"{executed.with_suffix('.html')}")
    return executed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: notebooks/_executed)")
    args = parser.parse_args()
    for nb in args.notebooks:
        run(nb, args.out or nb.parent / "_executed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
