"""Reading a route label out of what a real model answers.

Models rarely answer with the bare label: they add quotes, markdown, a sentence around it, a
``Label: billing`` prefix, JSON, or shorten it (``tech`` for ``technical``). ``parse_label`` tries,
in order: JSON, a ``label:``-style field, the whole answer, its first line, its first sentence,
the whole text; within each, exact labels and aliases first, then unique prefixes. A window that
names two different labels is ambiguous and skipped; nothing found gives ``None``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_FIELD = re.compile(
    r"\b(?:label|route|category|class|classification|intent|answer|destination|department)"
    r"\s*[:=]\s*(.+)", re.IGNORECASE)
_CONFIDENCE = re.compile(
    r"\b(?:confidence|certainty|probability)\b\W{0,3}(?:is\s+|of\s+)?(\d{1,3}(?:\.\d{1,6})?)"
    r"(?![\d.])\s*(%?)", re.IGNORECASE)
_PERCENT = re.compile(  # the number must start at a digit run's start: linear on "1" * 10**6
    r"(?<![\d.])(\d{1,3}(?:\.\d{1,6})?)\s*(%)\s*(?:confident|confidence|sure)", re.IGNORECASE)
_JSON_KEYS = ("label", "route", "category", "class", "intent", "answer", "classification")
_MIN_PREFIX = 3  # "bil" → billing; shorter fragments match too much
_MAX_SUFFIX = 3  # "refunds", "billings", "technically": an inflection adds a few letters
_MAX_WORD = 64
"""Longer words never match a label by prefix (``billingxxx…`` is not ``billing``)."""
_MAX_FIELDS = 8
_EDGE = 8_192
"""Longer answers are read at their start and end only (where a label is stated)."""


# Compiled once: re.sub(pattern, ...) looks its pattern up in re's cache on every call.
_TAGS = re.compile(r"<[^>]{1,40}>").sub
_DASHES = re.compile(r"[_\-]+").sub
_WORDS = re.compile(r"[^\W_]+").findall
_DIGIT = re.compile(r"\d").search


def normalize(text: str) -> str:
    """Lower case, markup and punctuation gone, ``_``/``-`` as spaces.

    >>> normalize('**"Tech_Support"**.')
    'tech support'
    """
    text = _TAGS(" ", text)  # <label>…</label>
    return " ".join(_WORDS(_DASHES(" ", text.lower())))


def parse_label(text: str, labels: Sequence[str],
                aliases: Mapping[str, str] | None = None) -> str | None:
    """The label ``text`` names, or ``None`` when it names none (or several).

    ``aliases`` maps other words to labels (``{"refund": "billing"}``).

    >>> parse_label("Label: **Billing**", ["billing", "technical"])
    'billing'
    >>> parse_label("I'd say this is a tech issue.", ["billing", "technical"])
    'technical'
    >>> parse_label("no idea", ["billing", "technical"]) is None
    True
    """
    table = _table(labels, aliases)
    if len(text) <= _SHORT:  # a router's answers repeat (its labels): each parsed once
        key = (text, id(table))
        hit = _PARSED.get(key)
        if hit is not None and hit[0] is table:  # (the table itself: its id is not reused)
            return hit[1]
        found = _parse(text, table)
        if len(_PARSED) >= 256:
            _PARSED.clear()
        _PARSED[key] = (table, found)
        return found
    return _parse(_edges(text), table)


_SHORT = 64
_PARSED: dict[tuple[str, int], tuple[dict[str, str], str | None]] = {}


def _parse(text: str, table: dict[str, str]) -> str | None:
    # The common answer, a bare label: no JSON and no "label:" field to look at first, so the
    # whole text is the first window (the same answer as the full search, without it).
    if ":" not in text and "=" not in text and not text.lstrip().startswith(("{", '"', "`")):
        found = table.get(normalize(text))
        if found is not None:
            return found
    for window in _windows(text):
        found = _match(normalize(window), table)
        if found is not None:
            return found
    return None


_TABLES: dict[tuple[Any, ...], dict[str, str]] = {}


def _table(labels: Sequence[str], aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Normalized label (or alias) → label; remembered, as a router asks with the same labels
    on every request."""
    try:
        key = (*labels, None, *(aliases or {}).items())
        hit = _TABLES.get(key)
    except TypeError:  # unhashable
        key, hit = None, None
    if hit is not None:
        return hit
    table = {normalize(label): label for label in labels}
    for word, label in (aliases or {}).items():
        if label in labels:
            table.setdefault(normalize(word), label)
    table.pop("", None)
    if key is not None:
        if len(_TABLES) >= 64:
            _TABLES.clear()
        _TABLES[key] = table
    return table


def parse_confidence(text: str) -> float | None:
    """A self-reported confidence in 0..1 (``confidence: 0.8``, ``90% confidence`` or JSON).

    >>> parse_confidence('{"label": "billing", "confidence": 0.92}')
    0.92
    >>> parse_confidence("billing (confidence: 85%)")
    0.85
    """
    if _DIGIT(text) is None and text.lstrip()[:1] not in ("{", '"', "`"):
        return None  # no number and no JSON: nothing to read (a bare label, most often)
    text = _edges(text)
    data = _json(text)
    value: float | None = None
    if isinstance(data, dict) and isinstance(data.get("confidence"), (int, float)):
        value = float(data["confidence"])
    elif _DIGIT(text) and ((m := _CONFIDENCE.search(text)) or (m := _PERCENT.search(text))):
        value = float(m.group(1)) / (100 if m.group(2) or float(m.group(1)) > 1 else 1)
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _windows(text: str) -> list[str]:
    text = text.strip()
    out: list[str] = []
    data = _json(text)
    if isinstance(data, dict):
        out += [str(data[k]) for k in _JSON_KEYS if isinstance(data.get(k), str)]
    elif isinstance(data, str):
        out.append(data)
    out += [m.group(1) for m in itertools.islice(_FIELD.finditer(text), _MAX_FIELDS)]
    first_line = next((ln for ln in text.splitlines() if normalize(ln)), "")
    first_sentence = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0]
    out += [text, first_line, first_sentence]
    return out


def _edges(text: str) -> str:
    """``text``, or its first and last ``_EDGE`` characters when it is longer (a label is
    stated at the start or at the end of an answer; this bounds the work on huge replies)."""
    if len(text) <= 2 * _EDGE:
        return text
    return f"{text[:_EDGE]}\n{text[-_EDGE:]}"


def _match(words_text: str, table: dict[str, str]) -> str | None:
    if not words_text:
        return None
    if words_text in table:
        return table[words_text]
    padded = f" {words_text} "
    hits = {label for key, label in table.items() if f" {key} " in padded}
    if len(hits) == 1:
        return hits.pop()
    if hits:
        return None  # names two labels: ambiguous
    words = words_text.split()
    if len(words) > 12:
        return None  # prefixes are only trusted in short answers
    # Truncations first ("tech" → technical), then inflections ("refunds" → refund); a
    # word much longer than the label it starts with is another word, not an inflection.
    for word in words:
        if len(word) > _MAX_WORD:
            continue
        for hits in ({label for key, label in table.items()
                      if len(word) >= _MIN_PREFIX and key.startswith(word)},
                     {label for key, label in table.items()
                      if len(key) >= 4 and len(word) - len(key) <= _MAX_SUFFIX
                      and word.startswith(key)}):
            if len(hits) == 1:
                return hits.pop()
    return None


def _json(text: str) -> object:
    body = text.strip()
    if body.startswith("```"):  # a fence; sliced, not a regex (linear on any text)
        body = body[3:].lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
    if body.endswith("```"):
        body = body[:-3]
    body = body.strip()
    if not body.startswith(("{", '"')):
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: '{"label":' * 50000
        return None
