"""The notebook surface: magics, widgets and rich display (IPython lives only here)."""

from __future__ import annotations

from typing import Any

__all__ = ["Playground", "TraceView", "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%orch`` / ``%orch`` (called by ``%load_ext orchnb``)."""
    from ..engine import set_live_display
    from ._magics import OrchMagics
    from ._stream_display import LiveText

    ipython.register_magics(OrchMagics)
    set_live_display(LiveText)  # streaming runs show their tokens in the cell as they arrive


def __getattr__(name: str) -> Any:
    if name in ("Playground", "TraceView"):
        from . import _playground

        return getattr(_playground, name)
    raise AttributeError(name)
