"""Small helpers shared by the pattern tests (not collected: no test_ prefix)."""

from __future__ import annotations

from orchnb.models import SimModel


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def scripted(name: str, *replies, seen=None) -> str:
    """Register ``sim:NAME`` answering ``replies`` in order (recording requests in ``seen``)."""
    it = iter(replies)
    SimModel(name, fn=lambda r: (seen.append(r) if seen is not None else None) or next(it)
             ).register()
    return f"sim:{name}"


def spans(run, kind=None, step=None):
    """The run's spans of one kind and/or step."""
    return [s for s in run.trace.spans
            if (kind is None or s.kind == kind) and (step is None or s.step == step)]
