"""Helpers for the browser tests (not collected: no test_ prefix)."""

from __future__ import annotations


def open_notebook(server: dict, context, name: str, cells: list[str],
                  workspace: str | None = None, wait: bool = True):
    """Write a notebook of ``cells`` into the server's root, open it in a new page, wait for its
    kernel and run every cell; returns the page.

    ``workspace`` (JupyterLab) opens it in a workspace of its own: the default one restores
    every notebook an earlier test opened, and one of those may become the current widget.
    ``wait=False`` returns while the cells still run (the run-all promise is not awaited)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, server["root"] / name)
    page = context.new_page()
    app = "lab/tree" if "lab" in server.get("kind", "lab") else "notebooks"
    if workspace and app == "lab/tree":
        app = f"lab/workspaces/{workspace}/tree"
    page.goto(f"{server['url']}/{app}/{name}?token={server['token']}")
    page.wait_for_function(
        """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
          return w && w.sessionContext && w.sessionContext.session
            && w.sessionContext.session.kernel
            && w.sessionContext.session.kernel.connectionStatus === "connected"; }""",
        timeout=60_000)
    if wait:
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    else:
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return page
