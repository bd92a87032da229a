"""``orchnb.Memory``: a named, persistent store of texts that steps recall from.

Keyword recall is SQLite FTS5 ranked by bm25; with an embedder, recall is by cosine similarity.
Everything lives in ``memory.sqlite`` under ORCHNB_HOME, so a memory written in one kernel is
recalled in another.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..models import resolve_embedder
from ._store import connect

if TYPE_CHECKING:
    import pandas as pd

EmbedFn = Callable[[list[str]], Awaitable[list[list[float]]]]
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One recalled memory: its ``text``, ``score`` (higher is closer), ``meta`` and ``id``."""

    text: str
    score: float
    meta: dict[str, Any] = field(default_factory=dict)
    id: int = 0

    def __str__(self) -> str:
        return self.text


class Recalled(list):  # type: ignore[type-arg]
    """The hits recalled for a step: a list of :class:`MemoryHit` that renders in a template
    (``{{ memory }}``) as one ``- text`` line per hit, or ``(nothing recalled)``.

    >>> str(Recalled([MemoryHit("likes tea", 1.0)]))
    '- likes tea'
    """

    def __str__(self) -> str:
        return "\n".join(f"- {h.text}" for h in self) if self else "(nothing recalled)"


class Memory:
    """A named memory, persisted in SQLite under ORCHNB_HOME and shared by every kernel.

    ``search`` ranks by keywords (FTS5, bm25) or, with an ``embedder`` (``"sim"``, a
    ``provider:model`` that embeds, ``"st:all-MiniLM-L6-v2"`` or an embedder object), by
    similarity. Give it to a step as ``Step(..., memory=mem)`` and use ``{{ memory }}`` in the
    prompt: what is recalled for the step's input is there, and the recall is a ``memory``
    span in the trace.

    >>> mem = Memory("notes")                                 # doctest: +SKIP
    >>> mem.add("Ada prefers email over phone", user="ada")  # doctest: +SKIP
    >>> mem.search("how to contact Ada?")[0].text            # doctest: +SKIP
    'Ada prefers email over phone'
    """

    def __init__(self, name: str, *, embedder: Any = None, k: int = 5):
        if not isinstance(name, str) or not _NAME.match(name):
            raise SpecError(f"memory name {name!r}: use 1-100 letters, digits, '_', '-' or '.'",
                            key="memory")
        self.name = name
        self.k = k
        """How many memories a step recalls by default."""
        self._embedder_spec = embedder
        self._embedder: Any = None

    # -- the embedder, resolved on first use -----------------------------------------------------
    @property
    def embedder(self) -> Any:
        """The embedder (``None`` for keyword recall)."""
        if self._embedder is None and self._embedder_spec is not None:
            self._embedder = resolve_embedder(self._embedder_spec)
        return self._embedder

    @property
    def embedder_id(self) -> str | None:
        e = self.embedder
        return None if e is None else getattr(e, "id", f"{e.provider}:{e.model}")

    async def _embed(self, texts: list[str], embed: EmbedFn | None) -> list[list[float]]:
        if embed is not None:
            return await embed(texts)
        vectors, _ = await self.embedder.embed(texts)
        return vectors

    # -- writing -------------------------------------------------------------------------------
    def add(self, text: str, **meta: Any) -> int:
        """Store ``text`` (with JSON-able ``meta``); returns its id.

        >>> Memory("notes").add("Ada prefers email", user="ada")  # doctest: +SKIP
        1
        """
        return _sync(self.aadd(text, **meta))

    async def aadd(self, text: str, *, embed: EmbedFn | None = None, **meta: Any) -> int:
        """``add`` for async code; ``embed`` replaces the embedder call (runs pass the engine's,
        so the embedding is a traced, priced call)."""
        if not isinstance(text, str) or not text.strip():
            raise SpecError(f"memory '{self.name}': add() needs non-empty text, got {text!r:.60}")
        try:
            meta_json = json.dumps(meta, ensure_ascii=False, default=str)
        except (TypeError, ValueError) as e:
            raise SpecError(f"memory '{self.name}': meta must be JSON-like: {e}") from None
        blob = None
        if self.embedder is not None:
            (vector,) = await self._embed([text], embed)
            blob = _pack(vector)

        def write() -> int:
            with connect() as conn:
                cur = conn.execute(
                    "INSERT INTO memories(name, text, meta, created, embedder, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (self.name, text, meta_json, time.time(), self.embedder_id, blob))
                return int(cur.lastrowid or 0)

        return await asyncio.to_thread(write)

    def clear(self) -> int:
        """Forget everything in this memory; returns how many memories were removed."""
        with connect() as conn:
            return conn.execute("DELETE FROM memories WHERE name = ?", (self.name,)).rowcount

    # -- reading -------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None) -> Recalled:
        """The ``k`` memories closest to ``query``, best first (keywords or similarity).

        >>> [h.text for h in Memory("notes").search("contact Ada", k=1)]  # doctest: +SKIP
        ['Ada prefers email over phone']
        """
        return _sync(self.asearch(query, k))

    async def asearch(self, query: str, k: int | None = None, *,
                      embed: EmbedFn | None = None) -> Recalled:
        """``search`` for async code (``embed`` as in :meth:`aadd`)."""
        k = self.k if k is None else k
        if k <= 0 or not str(query).strip():
            return Recalled()
        if self.embedder is None:
            return await asyncio.to_thread(self._keyword, str(query), k)
        return await self._similar(str(query), k, embed)

    def _keyword(self, query: str, k: int) -> Recalled:
        words = _WORD.findall(query.lower())
        if not words:
            return Recalled()
        # Each word quoted (no FTS syntax from user text), any word may match; bm25 ranks.
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))
        with connect() as conn:
            rows = conn.execute(
                "SELECT m.id, m.text, m.meta, bm25(memories_fts) AS rank FROM memories_fts "
                "JOIN memories m ON m.id = memories_fts.rowid "
                "WHERE memories_fts MATCH ? AND m.name = ? ORDER BY rank LIMIT ?",
                (match, self.name, k)).fetchall()
        return Recalled(MemoryHit(text, -rank, json.loads(meta), id_)
                        for id_, text, meta, rank in rows)

    async def _similar(self, query: str, k: int, embed: EmbedFn | None) -> Recalled:
        eid = self.embedder_id

        def load() -> list[tuple[int, str, str, bytes | None, str | None]]:
            with connect() as conn:
                return conn.execute("SELECT id, text, meta, vector, embedder FROM memories "
                                    "WHERE name = ?", (self.name,)).fetchall()

        rows = await asyncio.to_thread(load)
        if not rows:
            return Recalled()
        # Memories stored without a vector from this embedder (added before it was set) are
        # embedded now, with the query, in one call, and their vectors kept.
        stale = [r for r in rows if r[3] is None or r[4] != eid]
        vectors = await self._embed([query] + [r[1] for r in stale], embed)
        q, fresh = vectors[0], dict(zip((r[0] for r in stale), vectors[1:], strict=True))
        if fresh:
            def update() -> None:
                with connect() as conn:
                    conn.executemany("UPDATE memories SET vector = ?, embedder = ? WHERE id = ?",
                                     [(_pack(v), eid, i) for i, v in fresh.items()])

            await asyncio.to_thread(update)
        scored = [(_cosine(q, fresh[r[0]] if r[0] in fresh else _unpack(r[3])), r)
                  for r in rows]
        scored.sort(key=lambda x: -x[0])
        return Recalled(MemoryHit(r[1], s, json.loads(r[2]), r[0]) for s, r in scored[:k])

    @property
    def df(self) -> pd.DataFrame:
        """Every memory as a DataFrame: id, text, created (UTC), meta (a dict)."""
        import pandas as pd

        with connect() as conn:
            rows = conn.execute("SELECT id, text, created, meta FROM memories WHERE name = ? "
                                "ORDER BY id", (self.name,)).fetchall()
        df = pd.DataFrame(rows, columns=["id", "text", "created", "meta"])
        df["created"] = pd.to_datetime(df["created"], unit="s", utc=True)
        df["meta"] = [json.loads(m) for m in df["meta"]]
        return df

    def __len__(self) -> int:
        with connect() as conn:
            return conn.execute("SELECT count(*) FROM memories WHERE name = ?",
                                (self.name,)).fetchone()[0]

    def __repr__(self) -> str:
        how = f"embedder={self._embedder_spec!r}" if self._embedder_spec is not None else "keyword"
        return f"Memory({self.name!r}, {how})"


def as_memory(value: Any) -> Memory:
    """A Memory from a Memory or a memory name."""
    if isinstance(value, Memory):
        return value
    if isinstance(value, str):
        return Memory(value)
    raise SpecError(f"memory must be an orchnb.Memory or a memory name, got {value!r:.60}",
                    key="memory")


def _pack(vector: Sequence[float]) -> bytes:
    return array("f", vector).tobytes()


def _unpack(blob: bytes | None) -> list[float]:
    out = array("f")
    out.frombytes(blob or b"")
    return out.tolist()


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b) or not a:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _sync(coro: Awaitable[Any]) -> Any:
    """Run a coroutine to its end from sync code, also inside a running loop (a notebook cell):
    there it runs on a short-lived thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, asyncio.run(coro)))  # type: ignore[arg-type]
        except BaseException as e:  # re-raised on the caller's thread
            box.append((False, e))

    t = threading.Thread(target=run, name="orchnb-memory")
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value
