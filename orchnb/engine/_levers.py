"""The cost levers a step asks its model calls for: prompt caching and a service tier.

A step (or agent) sets them around its own calls with :func:`call_levers`; every call it makes
(structured answers, repairs, an agent's turns) then carries them, without each helper passing
them on. The run's ``service_tier`` option is the default for calls whose step sets none.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

Levers = tuple[str | None, str | None]
NO_LEVERS: Levers = (None, None)
"""No lever asked for (the default; every ``(None, None)`` setting is this object)."""
_LEVERS: ContextVar[Levers] = ContextVar("orchnb_levers", default=NO_LEVERS)


def set_levers(cache_prompt: str | None, service_tier: str | None) -> Token[Levers] | None:
    """Ask for these levers from here on (undo with :func:`reset_levers`); None when they are
    the ones already asked for, so a step without levers costs one lookup, no context change."""
    levers = (NO_LEVERS if cache_prompt is None and service_tier is None
              else (cache_prompt, service_tier))
    current = _LEVERS.get()
    if current is levers or current == levers:
        return None
    return _LEVERS.set(levers)


def reset_levers(token: Token[Levers] | None) -> None:
    """Undo :func:`set_levers` (a None token: nothing was changed)."""
    if token is not None:
        _LEVERS.reset(token)


class call_levers:  # lower case: used as a function, ``with call_levers(...)``
    """Model calls made inside ask for ``cache_prompt`` (``"5m"``/``"1h"``) and
    ``service_tier``; both already validated by the step that sets them.

    >>> with call_levers("5m", "flex"):
    ...     current_levers()
    ('5m', 'flex')
    """

    __slots__ = ("_levers", "_token")

    def __init__(self, cache_prompt: str | None = None, service_tier: str | None = None):
        self._levers = (cache_prompt, service_tier)
        self._token: Token[Levers] | None = None

    def __enter__(self) -> None:
        self._token = set_levers(*self._levers)

    def __exit__(self, *exc: Any) -> None:
        reset_levers(self._token)


def current_levers() -> Levers:
    """``(cache_prompt, service_tier)`` of the step now running (``(None, None)``: none)."""
    return _LEVERS.get()
