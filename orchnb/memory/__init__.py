"""Memory: named stores steps recall from (``orchnb.Memory``) and chat threads
(``pipe.chat``), persisted in ``memory.sqlite`` under ORCHNB_HOME.

This package sits beside ``patterns`` (above the engine): patterns give steps ``memory=`` and
pipelines ``chat``; memory resolves embedders through ``patterns``, lazily.
"""

from __future__ import annotations

from typing import Any

from ..engine import RunContext
from ._chat import ChatThread, Policy, Turn
from ._memory import Memory, MemoryHit, Recalled, as_memory
from ._store import memory_path


async def recall(ctx: RunContext, memory: Memory, query: str, *, step: str,
                 k: int | None = None) -> Recalled:
    """What ``memory`` recalls for ``query`` in a run: a ``memory`` span (and, with an
    embedder, the embedding call as a traced model call).

    >>> hits = await recall(ctx, Memory("notes"), "contact Ada", step="answer")  # doctest: +SKIP
    """
    embed: Any = None
    embedder = memory.embedder
    if embedder is not None:
        async def embed(texts: list[str]) -> list[list[float]]:
            return await ctx.embed(embedder, texts, step=step)

    return await ctx.memory("search", lambda: memory.asearch(query, k, embed=embed), step=step,
                            input=query)


__all__ = ["ChatThread", "Memory", "MemoryHit", "Policy", "Recalled", "Turn", "as_memory",
           "memory_path", "recall"]
