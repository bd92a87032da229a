"""The fake server's prompt cache: cache reads and writes counted the way each provider does.

Anthropic caches only prefixes a request marks with ``cache_control`` (the prefix ends at each
marked block, in the order tools → system → messages): the first request writes it (5-minute or
1-hour, by the block's ``ttl``), a later one with the same prefix reads it. OpenAI caches every
prompt by itself: a request whose leading messages (with the tools) repeat an earlier one's,
1024 tokens or more, reads them, counted in steps of 128 tokens. Prefixes shorter than the
provider's minimum for the model are not cached. Token counts are the fake's estimates.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from ..models import estimate_tokens, min_cacheable
from ._wire import FakeReply, FakeRequest

MEMORY = 4096
"""Prefixes the fake remembers (the least recently used are forgotten first)."""


def _tokens(part: Any) -> int:
    return estimate_tokens(part if isinstance(part, str) else json.dumps(part, default=str)) + 4


class FakePromptCache:
    """Remembers prompt prefixes and turns a reply's usage into cache reads and writes.

    >>> cache = FakePromptCache()
    >>> body = {"model": "gpt-4o", "messages": [{"role": "system", "content": "x " * 3000},
    ...                                          {"role": "user", "content": "hi"}]}
    >>> req = FakeRequest(api="openai", model="gpt-4o", body=body)
    >>> [cache.answer(req, FakeReply("a")).cached_tokens for _ in range(2)]
    [0, 1408]
    """

    def __init__(self, memory: int = MEMORY):
        self.memory = memory
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every prefix."""
        with self._lock:
            self._seen.clear()

    def _hit(self, key: str) -> bool:
        """Whether ``key`` was seen (then it is fresh again); remembers it either way."""
        with self._lock:
            seen = key in self._seen
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > self.memory:
                self._seen.popitem(last=False)
        return seen

    def answer(self, req: FakeRequest, reply: FakeReply) -> FakeReply:
        """``reply`` with the cache's reads and writes for ``req`` (a reply whose script gave
        its own cache counts, or whose request carries no body, is left as it is)."""
        if reply.cached_tokens or reply.cache_write_tokens or not req.body:
            return reply
        if req.api == "openai":
            tier = req.body.get("service_tier")
            # The API reports the tier it served at: the one asked for, else "default".
            served = tier[:32] if isinstance(tier, str) and tier != "auto" else "default"
            reply = replace(reply, service_tier=served)
            return replace(reply, cached_tokens=self._openai(req))
        read, written, ttl = self._anthropic(req)
        return replace(reply, cached_tokens=read, cache_write_tokens=written,
                       cache_write_1h_tokens=written if ttl == "1h" else 0)

    def _openai(self, req: FakeRequest) -> int:
        """Tokens of the longest earlier-seen leading run of messages (with the tools)."""
        body = req.body
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        h = hashlib.blake2b(json.dumps([body.get("model"), body.get("tools")],
                                       default=str).encode(), digest_size=16)
        size, best = _tokens(body.get("tools") or ""), 0
        for m in messages[:-1]:  # the newest turn is never a prefix of itself
            h.update(json.dumps(m, sort_keys=True, default=str).encode())
            size += _tokens(m.get("content") if isinstance(m, dict) else m)
            if self._hit(h.hexdigest()) and size >= 1024:
                best = size
        return 0 if best < 1024 else 1024 + (best - 1024) // 128 * 128

    def _anthropic(self, req: FakeRequest) -> tuple[int, int, str]:
        """(read, written, ttl of the write) for the marked prefixes of ``req``."""
        floor = min_cacheable("anthropic", req.model) or 1024
        h = hashlib.blake2b(str(req.model).encode(), digest_size=16)
        size, read, last, ttl = 0, 0, 0, "5m"
        for block in _blocks(req.body):
            h.update(json.dumps(block, sort_keys=True, default=str).encode())
            size += _tokens(block.get("text", block) if isinstance(block, dict) else block)
            mark = block.get("cache_control") if isinstance(block, dict) else None
            if isinstance(mark, dict) and size >= floor:
                if self._hit(h.hexdigest()):
                    read = size
                last, ttl = size, "1h" if mark.get("ttl") == "1h" else "5m"
        return read, max(0, last - read), ttl


def _blocks(body: dict[str, Any]) -> list[Any]:
    """The request's prompt as Anthropic orders it for caching: tools, system, messages."""
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    system = body.get("system")
    blocks: list[Any] = list(tools)
    if isinstance(system, str):
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(system)
    for m in body.get("messages") if isinstance(body.get("messages"), list) else []:
        content = m.get("content") if isinstance(m, dict) else None
        blocks.extend(content if isinstance(content, list) else [{"text": str(content)}])
    return blocks
