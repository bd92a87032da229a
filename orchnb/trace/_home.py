"""One shared object per database file in orchnb's home (``home()`` itself is at the bottom)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from .._home import home, home_key

__all__ = ["PerFile", "home", "home_key"]

T = TypeVar("T")


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

    def forget(self, folder: Path) -> list[T]:
        """Drop (and return) the objects of files under ``folder``; the caller closes them."""
        folder = Path(folder).resolve()
        with self._lock:
            gone = [p for p in self._by_path if p.is_relative_to(folder)]
            out = [self._by_path.pop(p) for p in gone]
            ids = {id(o) for o in out}
            for key in [k for k, o in self._by_home.items() if id(o) in ids]:
                del self._by_home[key]
        return out
