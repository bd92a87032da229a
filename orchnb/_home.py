"""Where orchnb keeps its files (the bottom layer: every package may ask)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _env_reader(name: str) -> Any:
    # os.environ.get is three Python calls (and a caught KeyError when the variable is unset);
    # the mapping's own dict, keyed as os.environ keys it, answers in one C call.
    environ = os.environ
    try:
        data, key, decode = environ._data, environ.encodekey(name), environ.decodevalue  # type: ignore[attr-defined]
    except AttributeError:  # not CPython's os._Environ
        return lambda: environ.get(name)

    def read() -> str | None:
        value = data.get(key)
        return None if value is None else decode(value)

    return read


_orchnb_home = _env_reader("ORCHNB_HOME")


def home_key() -> tuple[str | None, str | None]:
    """What the default home depends on, cheaply: ``$ORCHNB_HOME``, else the working directory.
    Per-home objects are looked up by this on every run (resolving paths costs ~20 µs)."""
    env = _orchnb_home()
    return env, None if env else os.getcwd()


def home() -> Path:
    """Where orchnb keeps its files: ``$ORCHNB_HOME`` or ``.orchnb/`` in the working directory.

    >>> home().name in (".orchnb", os.path.basename(os.environ.get("ORCHNB_HOME", "")))
    True
    """
    return Path(os.environ.get("ORCHNB_HOME") or Path.cwd() / ".orchnb")
