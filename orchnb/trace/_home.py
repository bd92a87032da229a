"""Where orchnb keeps its files, and one shared object per database file in it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def home_key() -> tuple[str | None, str | None]:
    """What the default home depends on, cheaply: ``$ORCHNB_HOME``, else the working directory.
    Per-home objects are looked up by this on every run (resolving paths costs ~20 µs)."""
    env = os.environ.get("ORCHNB_HOME")
    return env, None if env else os.getcwd()


def home() -> Path:
    """Where orchnb keeps its files: ``$ORCHNB_HOME`` or ``.orchnb/`` in the working directory."""
    return Path(os.environ.get("ORCHNB_HOME") or Path.cwd() / ".orchnb")


class PerFile(Generic[T]):
    """One shared object per database file, found cheaply for the default home on every run
    (resolving paths costs ~20 µs, so the default is remembered per :func:`home_key`).

    >>> stores = PerFile(SpanStore, "traces.sqlite")   # doctest: +SKIP
    >>> stores.get() is stores.get()                   # doctest: +SKIP
    True
    """

    def __init__(self, make: Callable[[Path], T], filename: str):
        self._make, self._filename = make, filename
        self._by_path: dict[Path, T] = {}
        self._by_home: dict[tuple[str | None, str | None], T] = {}
        self._lock = threading.Lock()

    def get(self, path: Path | None = None) -> T:
        if path is None:
            key = home_key()
            obj = self._by_home.get(key)
            if obj is None:
                obj = self._by_home[key] = self.get(home() / self._filename)
            return obj
        path = Path(path).resolve()
        with self._lock:
            obj = self._by_path.get(path)
            if obj is None:
                obj = self._by_path[path] = self._make(path)
            return obj
