"""The cost levers a step asks its model calls for: prompt caching and a service tier.

A step (or agent) sets them around its own calls with :func:`call_levers`; every call it makes
(structured answers, repairs, an agent's turns) then carries them, without each helper passing
them on. The run's ``service_tier`` option is the default for calls whose step sets none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_LEVERS: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "orchnb_levers", default=(None, None))


@contextmanager
def call_levers(cache_prompt: str | None = None, service_tier: str | None = None
                ) -> Iterator[None]:
    """Model calls made inside ask for ``cache_prompt`` (``"5m"``/``"1h"``) and
    ``service_tier``; both already validated by the step that sets them.

    >>> with call_levers("5m", "flex"):
    ...     current_levers()
    ('5m', 'flex')
    """
    token = _LEVERS.set((cache_prompt, service_tier))
    try:
        yield
    finally:
        _LEVERS.reset(token)


def current_levers() -> tuple[str | None, str | None]:
    """``(cache_prompt, service_tier)`` of the step now running (``(None, None)``: none)."""
    return _LEVERS.get()
