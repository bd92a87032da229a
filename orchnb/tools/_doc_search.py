"""``doc_search(paths)``: a tool that searches text files the user names (BM25, no key).

Files are split into passages and indexed in an in-memory SQLite FTS5 table (part of Python's
``sqlite3``: nothing to install), ranked with FTS5's BM25. The index is built on the first
search and rebuilt when a file changes.

Only files inside the folders the user named are read: a symbolic link (to a file or a folder)
that leads out of them is refused, and the refusal is said once (a warning, and a note in the
tool's answers), so a folder holding ``notes.txt -> /etc/passwd`` cannot leak that file to a
model. Directories are walked without following links.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
import sqlite3
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..exceptions import OrchnbWarning, SpecError, ToolError
from ._tool import Tool

MAX_FILE_BYTES = 5_000_000
"""Larger files are skipped (with a note in the answer): the index lives in memory."""
MAX_FILES = 2_000
"""Most files one doc_search tool indexes."""
MAX_SCANNED = 50_000
"""Most directory entries one glob pattern may look at (a link loop cannot run for ever)."""
SUFFIXES = frozenset({".txt", ".md", ".rst", ".csv", ".json", ".html", ".htm", ".py", ".yaml",
                      ".yml", ".toml", ".tex", ".log", ".xml", ".ini", ".cfg"})
"""Text files a directory contributes (a file named explicitly is read whatever its suffix)."""


class DocIndex:
    """Passages of the named files in a SQLite FTS5 table, searched with BM25.

    >>> index = DocIndex(["notes/*.md"])              # doctest: +SKIP
    >>> index.search("refund policy", k=3)            # doctest: +SKIP
    [{'path': 'notes/faq.md', 'passage': 2, 'text': '...'}]
    """

    def __init__(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                 chunk_chars: int = 1_000):
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not items:
            raise SpecError("doc_search: give at least one file, directory or glob pattern",
                            key="paths")
        if not isinstance(chunk_chars, int) or chunk_chars < 100:
            raise SpecError(f"doc_search: chunk_chars must be a whole number ≥ 100, got "
                            f"{chunk_chars!r}", key="chunk_chars")
        self.paths = [str(p) for p in items]
        self.chunk_chars = chunk_chars
        self.skipped: list[str] = []
        self.refused: list[str] = []
        """Files (links) found under the paths whose real location is outside them."""
        self._warned = False
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._stamp: tuple[tuple[str, float, int], ...] = ()

    def files(self) -> list[Path]:
        """The files the paths name now (globs expanded, directories walked for text files),
        without those whose real location is outside the named roots."""
        found: dict[str, Path] = {}
        refused: list[str] = []
        for item in self.paths:
            expanded = os.path.expanduser(item)
            magic = glob.has_magic(expanded)
            root = _root(expanded) if magic else os.path.realpath(expanded)
            matches = (itertools.islice(glob.iglob(expanded, recursive=True), MAX_SCANNED)
                       if magic else [expanded])
            for match in matches:
                p = Path(match)
                if p.is_dir():
                    if not _inside(p, root):  # a glob's match that links out of the root
                        refused.append(str(p))
                        continue
                    candidates = _walk(p)
                elif p.is_file():
                    candidates = [p]
                else:
                    continue
                for f in candidates:
                    if not _inside(f, root):
                        refused.append(str(f))
                    else:
                        found.setdefault(str(f), f)
        self._refuse(refused)
        return list(found.values())[:MAX_FILES]

    def _refuse(self, refused: list[str]) -> None:
        unique = sorted(set(refused))
        self.refused = unique
        if unique and not self._warned:
            self._warned = True
            warnings.warn(f"doc_search: {len(unique)} file(s) are links to places outside "
                          f"{', '.join(self.paths)} and are not read: "
                          f"{', '.join(unique[:5])}{' ...' if len(unique) > 5 else ''}",
                          OrchnbWarning, stacklevel=4)

    def _index(self) -> sqlite3.Connection:
        files = self.files()
        if not files:
            raise ToolError(f"doc_search: no files found at {', '.join(self.paths)}; check "
                            "the paths given to orchnb.tools.doc_search")
        stamp = tuple((str(f), f.stat().st_mtime, f.stat().st_size) for f in files)
        if self._db is not None and stamp == self._stamp:
            return self._db
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.execute("CREATE VIRTUAL TABLE passages USING fts5(text, path UNINDEXED, "
                   "passage UNINDEXED, tokenize='porter unicode61')")
        skipped = []
        for f in files:
            if f.stat().st_size > MAX_FILE_BYTES:
                skipped.append(f"{f} (over {MAX_FILE_BYTES:,} bytes)")
                continue
            text = f.read_text(encoding="utf-8", errors="replace")
            db.executemany("INSERT INTO passages (text, path, passage) VALUES (?, ?, ?)",
                           [(chunk, str(f), i + 1)
                            for i, chunk in enumerate(_chunks(text, self.chunk_chars))])
        if self._db is not None:
            self._db.close()
        self._db, self._stamp, self.skipped = db, stamp, skipped
        return db

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` passages that best match ``query`` (BM25), best first."""
        words = re.findall(r"\w+", str(query).lower())[:32]
        if not words:
            raise ToolError("doc_search: the query has no words to search for")
        # Each word quoted (FTS5 syntax in a query is not the model's to use), any may match.
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        with self._lock:
            db = self._index()
            rows = db.execute("SELECT path, passage, text FROM passages WHERE passages MATCH ? "
                              "ORDER BY bm25(passages) LIMIT ?",
                              (match, max(1, min(int(k), 50)))).fetchall()
        return [{"path": p, "passage": n, "text": t} for p, n, t in rows]


def _root(pattern: str) -> str:
    """The real directory a glob pattern starts from (its part before the first wildcard)."""
    parts = Path(pattern).parts
    fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), parts))
    return os.path.realpath(os.path.join(*fixed) if fixed else ".")


def _walk(folder: Path) -> list[Path]:
    """Text files under ``folder``, sorted; links to folders are not entered."""
    out = []
    for here, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        out += [Path(here) / n for n in sorted(names) if Path(n).suffix.lower() in SUFFIXES]
        if len(out) >= MAX_FILES * 2:
            break
    return sorted(f for f in out if f.is_file())


def _inside(path: Path, root: str) -> bool:
    """Whether ``path``'s real location (links resolved) is ``root`` or under it."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _chunks(text: str, size: int) -> list[str]:
    """Paragraph-aligned passages of about ``size`` characters."""
    out: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        while len(para) > size:  # one long paragraph: cut at a space near the limit
            cut = para.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            if current:
                out.append(current)
                current = ""
            out.append(para[:cut].strip())
            para = para[cut:].strip()
        if current and len(current) + len(para) + 2 > size:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        out.append(current)
    return [c for c in out if c]


def doc_search(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
               name: str = "doc_search", k: int = 5, chunk_chars: int = 1_000) -> Tool:
    """A tool that searches the files at ``paths`` (files, directories, globs) with BM25.

    The model calls it with a ``query`` and gets the best ``k`` passages, each with its file.
    Nothing leaves the machine and no key is needed.

    >>> from orchnb.tools import doc_search
    >>> search = doc_search(["docs/*.md", "faq.txt"])           # doctest: +SKIP
    >>> Agent("helper", "openai:gpt-4o-mini", [search])          # doctest: +SKIP
    """
    index = DocIndex(paths, chunk_chars=chunk_chars)

    def search(query: str) -> str:
        hits = index.search(query, k)
        if not hits:
            return f"No passage matches {query!r}."
        skipped = index.skipped + [f"{f} (a link out of the searched folders)"
                                   for f in index.refused[:5]]
        note = f"\n(skipped: {'; '.join(skipped)})" if skipped else ""
        return "\n\n".join(f"[{h['path']} #{h['passage']}]\n{h['text']}" for h in hits) + note

    where = ", ".join(index.paths)
    search.__doc__ = f"Search the documents ({where[:200]}) for passages about a query."
    tool = Tool(search, name=name)
    tool.index = index  # type: ignore[attr-defined]  # for tests and for a look at the passages
    return tool
