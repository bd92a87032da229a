"""Where orchnb keeps its files (the bottom layer: every package may ask)."""

from __future__ import annotations

import os
from pathlib import Path


def home_key() -> tuple[str | None, str | None]:
    """What the default home depends on, cheaply: ``$ORCHNB_HOME``, else the working directory.
    Per-home objects are looked up by this on every run (resolving paths costs ~20 µs)."""
    env = os.environ.get("ORCHNB_HOME")
    return env, None if env else os.getcwd()


def home() -> Path:
    """Where orchnb keeps its files: ``$ORCHNB_HOME`` or ``.orchnb/`` in the working directory.

    >>> home().name in (".orchnb", os.path.basename(os.environ.get("ORCHNB_HOME", "")))
    True
    """
    return Path(os.environ.get("ORCHNB_HOME") or Path.cwd() / ".orchnb")
