"""The notebook surface: magics, widgets and rich display (IPython lives only here)."""

from __future__ import annotations

from typing import Any

__all__ = ["LabelWidget", "Playground", "TraceView", "label", "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%orch`` / ``%orch`` (called by ``%load_ext orchnb``)."""
    from ..engine import set_live_display
    from ._magics import OrchMagics
    from ._stream_display import LiveText

    ipython.register_magics(OrchMagics)
    set_live_display(LiveText)  # streaming runs show their tokens in the cell as they arrive
    _keep_charts_in_exports()


KEPT_RENDERER = "plotly_mimetype+notebook_connected"
"""Plotly's renderer set by ``%load_ext orchnb`` unless ``PLOTLY_RENDERER`` is set: charts carry
their HTML beside the Plotly JSON, so ``jupyter nbconvert --to html`` (papermill, CI) keeps
them; JupyterLab still draws the JSON."""


def _keep_charts_in_exports() -> None:
    import os
    import sys

    if os.environ.get("PLOTLY_RENDERER"):
        return  # the user chose
    os.environ["PLOTLY_RENDERER"] = KEPT_RENDERER  # read by plotly when it is first imported
    pio = sys.modules.get("plotly.io")
    if pio is not None and pio.renderers.default == "plotly_mimetype":  # imported already
        pio.renderers.default = KEPT_RENDERER


def __getattr__(name: str) -> Any:
    if name in ("Playground", "TraceView"):
        from . import _playground

        return getattr(_playground, name)
    if name in ("label", "LabelWidget"):
        from . import _label

        return getattr(_label, name)
    raise AttributeError(name)
