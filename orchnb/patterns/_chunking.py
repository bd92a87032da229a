"""Splitting a long text into chunks under a token budget, with overlap.

Tokens are estimated at about four characters each (deterministic, no tokenizer download).
Chunks end on paragraph boundaries where possible, then sentences, then words; each chunk after
the first starts with the tail of the previous one (about ``overlap_tokens``), cut at a sentence
or word boundary.
"""

from __future__ import annotations

import re

from ..engine import MAX_TOKENS_KNOB
from ..exceptions import SpecError

CHARS_PER_TOKEN = 4
_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"'”’)\]]*\s+")


def split_text(text: str, chunk_tokens: int = 3000, overlap_tokens: int = 200) -> list[str]:
    """``text`` as chunks of at most ``chunk_tokens`` estimated tokens.

    >>> split_text("One.\\n\\nTwo.\\n\\nThree.", chunk_tokens=3, overlap_tokens=0)
    ['One.\\n\\nTwo.', 'Three.']
    """
    check_budget(chunk_tokens, overlap_tokens)
    limit, overlap = chunk_tokens * CHARS_PER_TOKEN, overlap_tokens * CHARS_PER_TOKEN
    if not text.strip():
        return []
    if len(text) <= limit:
        return [text.strip()]
    chunks: list[str] = []
    current = ""
    for unit in _units(text, limit - overlap - 1):  # room for the overlap and a space
        if current and len(current) + len(unit) > limit:
            chunks.append(current.strip())
            current = _tail(current, overlap)
        current += unit
    if current.strip():
        chunks.append(current.strip())
    return chunks


def check_budget(chunk_tokens: int, overlap_tokens: int) -> None:
    """Raise :class:`SpecError` unless ``0 <= overlap_tokens < chunk_tokens / 2``."""
    if (not isinstance(chunk_tokens, int) or isinstance(chunk_tokens, bool)
            or not 1 <= chunk_tokens <= MAX_TOKENS_KNOB):
        raise SpecError(f"chunk_tokens must be a positive whole number ≤ {MAX_TOKENS_KNOB:,}, "
                        f"got {chunk_tokens!r}", key="chunk_tokens")
    if (not isinstance(overlap_tokens, int) or isinstance(overlap_tokens, bool)
            or not 0 <= overlap_tokens < chunk_tokens / 2):
        raise SpecError(f"overlap_tokens must be at least 0 and under half of chunk_tokens "
                        f"({chunk_tokens}), got {overlap_tokens!r}", key="overlap_tokens")


def _units(text: str, limit: int) -> list[str]:
    """Paragraphs (with their trailing blank lines); too-long ones as sentences, then words."""
    out: list[str] = []
    for para in re.findall(r".*?(?:\n\s*\n|\Z)", text, flags=re.DOTALL):
        if not para:
            continue
        if len(para) <= limit:
            out.append(para)
            continue
        for sentence in _split_keep(para, _SENTENCE_END):
            if len(sentence) <= limit:
                out.append(sentence)
            else:
                out += _pack(_split_keep(sentence, re.compile(r"(?<=\s)(?=\S)")), limit)
    return out


def _split_keep(text: str, boundary: re.Pattern[str]) -> list[str]:
    """Split after each boundary match, keeping every character."""
    pieces, start = [], 0
    for m in boundary.finditer(text):
        if m.end() > start:
            pieces.append(text[start:m.end()])
            start = m.end()
    pieces.append(text[start:])
    return [p for p in pieces if p]


def _pack(words: list[str], limit: int) -> list[str]:
    out, current = [], ""
    for w in words:
        while len(w) > limit:  # one "word" longer than a chunk (no spaces): cut it
            if current:
                out.append(current)
                current = ""
            out.append(w[:limit])
            w = w[limit:]
        if current and len(current) + len(w) > limit:
            out.append(current)
            current = ""
        current += w
    return [*out, current] if current else out


def _tail(chunk: str, overlap: int) -> str:
    """The last ``overlap`` characters of ``chunk``, starting at a sentence or word boundary."""
    if overlap <= 0:
        return ""
    tail = chunk[-overlap:]
    if len(tail) < len(chunk):
        m = _SENTENCE_END.search(tail) or re.search(r"\s+", tail)
        tail = tail[m.end():] if m else ""
    return tail.lstrip() + ("" if tail.endswith(("\n", " ")) else " ") if tail.strip() else ""
