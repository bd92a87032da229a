"""doc_search: BM25 over files the user names (SQLite FTS5), as an agent tool."""

from __future__ import annotations

import asyncio

import pytest

from orchnb.exceptions import SpecError, ToolError
from orchnb.tools import DocIndex, doc_search


@pytest.fixture
def docs(tmp_path):
    (tmp_path / "faq.md").write_text(
        "# Refunds\n\nRefunds are paid within 14 days of a return.\n\n"
        "# Shipping\n\nParcels ship from Lyon every weekday.\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hours.txt").write_text("The office opens at nine.\n\nClosed Sundays.")
    (tmp_path / "image.bin").write_bytes(b"\x00\x01refund")
    return tmp_path


def test_best_passage_first_with_its_file(docs):
    hits = DocIndex([docs]).search("when are refunds paid?", k=2)
    assert "14 days" in hits[0]["text"] and hits[0]["path"].endswith("faq.md")


def test_directories_are_walked_for_text_files_and_globs_expand(docs):
    index = DocIndex([str(docs / "**" / "*.txt")])
    assert [f.name for f in index.files()] == ["hours.txt"]
    assert {f.name for f in DocIndex(docs).files()} == {"faq.md", "hours.txt"}


def test_tool_answers_text_and_sees_file_changes(docs):
    search = doc_search([docs], k=1)
    out = asyncio.run(search.invoke({"query": "office opening"}))
    assert "nine" in out and "hours.txt" in out
    (docs / "sub" / "hours.txt").write_text("The office opens at ten now, on weekdays only.")
    assert "ten" in asyncio.run(search.invoke({"query": "office opening"}))


def test_query_syntax_is_not_the_models(docs):
    search = DocIndex([docs])
    assert search.search('refunds" OR NEAR(', k=1)  # FTS5 syntax is quoted away
    assert DocIndex([docs]).search("zebra", k=3) == []
    with pytest.raises(ToolError, match="no words"):
        search.search("?!", k=1)


def test_missing_files_and_bad_options_are_clear(tmp_path):
    with pytest.raises(ToolError, match="no files found"):
        DocIndex([tmp_path / "nothing"]).search("x")
    with pytest.raises(SpecError, match="at least one"):
        doc_search([])
    with pytest.raises(SpecError, match="chunk_chars"):
        doc_search([tmp_path], chunk_chars=5)


def test_long_files_are_split_into_passages(tmp_path):
    (tmp_path / "long.txt").write_text(" ".join(f"word{i}" for i in range(2000)))
    hits = DocIndex([tmp_path], chunk_chars=500).search("word1999", k=1)
    assert len(hits[0]["text"]) <= 500 and "word1999" in hits[0]["text"]
