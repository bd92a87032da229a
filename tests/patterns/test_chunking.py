"""Splitting long texts: token budget, paragraph/sentence boundaries, overlap, determinism."""

from __future__ import annotations

import itertools
from importlib.resources import files
from pathlib import Path

import pytest

from orchnb import SpecError
from orchnb.patterns import split_text
from orchnb.patterns._chunking import CHARS_PER_TOKEN

# The whole book is in ../shared beside the project (CI has it; a fresh clone does not); orchnb
# ships its opening, after a licence header, for notebooks/mapreduce.ipynb.
BOOK = Path(__file__).resolve().parents[3] / "shared/data/longdocs/pg84_frankenstein.txt"
EXCERPT = files("orchnb") / "data" / "frankenstein_excerpt.txt"
MARK = "*** START OF THE EXCERPT ***"


def paragraphs(n: int, words: int = 40) -> str:
    return "\n\n".join(" ".join(f"p{i}w{j}." if j % 10 == 9 else f"p{i}w{j}"
                                for j in range(words)) for i in range(n))


def test_short_text_is_one_chunk_and_empty_text_none():
    assert split_text("  Hello there.  ") == ["Hello there."]
    assert split_text("") == [] and split_text("\n\n  ") == []


def test_chunks_stay_under_the_budget_and_end_on_paragraphs():
    text = paragraphs(30)
    chunks = split_text(text, chunk_tokens=200, overlap_tokens=0)
    assert len(chunks) > 3
    assert all(len(c) <= 200 * CHARS_PER_TOKEN for c in chunks)
    paras = set(text.split("\n\n"))
    for c in chunks:
        assert all(p in paras for p in c.split("\n\n"))  # whole paragraphs only
    assert "\n\n".join(chunks) == text  # nothing lost, nothing repeated


def test_overlap_repeats_the_tail_of_the_previous_chunk():
    chunks = split_text(paragraphs(30), chunk_tokens=200, overlap_tokens=40)
    for prev, nxt in itertools.pairwise(chunks):
        head = nxt.split("\n\n")[0]
        assert prev.endswith(head) and 0 < len(head) <= 40 * CHARS_PER_TOKEN


def test_long_paragraphs_split_on_sentences_then_words():
    sentence = "This is one sentence with several words in it. "
    text = sentence * 100  # one paragraph of 4,800 characters
    chunks = split_text(text, chunk_tokens=100, overlap_tokens=0)
    assert all(len(c) <= 400 for c in chunks)
    assert all(c.endswith("in it.") for c in chunks)
    no_spaces = "x" * 1000
    assert [len(c) for c in split_text(no_spaces, chunk_tokens=100, overlap_tokens=0)] == [
        399, 399, 202]


def test_splitting_the_shipped_excerpt_is_deterministic_and_covers_it():
    header, text = EXCERPT.read_text(encoding="utf-8").split(MARK)
    assert "PUBLIC DOMAIN IN THE UNITED STATES" in header
    text = text.strip()
    assert text.startswith("Frankenstein;") and len(text) > 50_000
    a = split_text(text, chunk_tokens=1500, overlap_tokens=100)
    assert a == split_text(text, chunk_tokens=1500, overlap_tokens=100)
    assert all(len(c) <= 1500 * CHARS_PER_TOKEN for c in a)
    assert 10 < len(a) < 30
    assert a[0].startswith(text[:50]) and a[-1].endswith(text[-50:])


def test_splitting_is_deterministic_and_covers_the_book():
    if not BOOK.exists():
        pytest.skip(f"the whole book is read from ../shared beside the project: {BOOK} is absent")
    text = BOOK.read_text(encoding="utf-8")
    a = split_text(text, chunk_tokens=3000, overlap_tokens=200)
    assert a == split_text(text, chunk_tokens=3000, overlap_tokens=200)
    assert all(len(c) <= 3000 * CHARS_PER_TOKEN for c in a)
    assert 30 < len(a) < 45
    assert a[0].startswith(text.strip()[:50]) and a[-1].endswith(text.strip()[-50:])


@pytest.mark.parametrize(("chunk", "overlap", "key"), [
    (0, 0, "chunk_tokens"), (100, 50, "overlap_tokens"), (100, -1, "overlap_tokens"),
    (1.5, 0, "chunk_tokens"),
])
def test_bad_budgets_are_spec_errors(chunk, overlap, key):
    with pytest.raises(SpecError) as e:
        split_text("text", chunk_tokens=chunk, overlap_tokens=overlap)
    assert e.value.key == key
