"""``doc_search(paths)``: a tool that searches text files the user names (BM25, no key).

Files are split into passages and indexed in an in-memory SQLite FTS5 table (part of Python's
``sqlite3``: nothing to install), ranked with FTS5's BM25. The index is built on the first
search and rebuilt when a file changes.
"""

from __future__ import annotations

import glob
import os
import re
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..exceptions import SpecError, ToolError
from ._tool import Tool

MAX_FILE_BYTES = 5_000_000
"""Larger files are skipped (with a note in the answer): the index lives in memory."""
MAX_FILES = 2_000
"""Most files one doc_search tool indexes."""
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
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._stamp: tuple[tuple[str, float, int], ...] = ()

    def files(self) -> list[Path]:
        """The files the paths name now (globs expanded, directories walked for text files)."""
        found: dict[str, Path] = {}
        for item in self.paths:
            expanded = os.path.expanduser(item)
            matches = glob.glob(expanded, recursive=True) if glob.has_magic(expanded) else [
                expanded]
            for match in matches:
                p = Path(match)
                if p.is_dir():
                    for f in sorted(p.rglob("*")):
                        if f.is_file() and f.suffix.lower() in SUFFIXES:
                            found.setdefault(str(f), f)
                elif p.is_file():
                    found.setdefault(str(p), p)
        return list(found.values())[:MAX_FILES]

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
        note = f"\n(skipped: {'; '.join(index.skipped)})" if index.skipped else ""
        return "\n\n".join(f"[{h['path']} #{h['passage']}]\n{h['text']}" for h in hits) + note

    where = ", ".join(index.paths)
    search.__doc__ = f"Search the documents ({where[:200]}) for passages about a query."
    tool = Tool(search, name=name)
    tool.index = index  # type: ignore[attr-defined]  # for tests and for a look at the passages
    return tool
