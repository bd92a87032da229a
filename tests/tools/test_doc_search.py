"""doc_search: BM25 over files the user names (SQLite FTS5), as an agent tool."""

from __future__ import annotations

import asyncio

import pytest

from orchnb.exceptions import OrchnbWarning, SpecError, ToolError
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


@pytest.fixture
def linked(docs, tmp_path_factory):
    """A docs folder holding links out of it: to a secret file and to a secret folder."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "passwd.txt").write_text("root:x:0:0:secret password line")
    (docs / "notes.txt").symlink_to(outside / "passwd.txt")
    (docs / "sub" / "etc").symlink_to(outside, target_is_directory=True)
    (docs / "inner.md").symlink_to(docs / "faq.md")  # a link inside the folder is fine
    return docs


def test_links_out_of_the_folder_are_refused_and_said_once(linked):
    index = DocIndex([linked])
    with pytest.warns(OrchnbWarning, match=r"1 file\(s\) are links .*notes\.txt"):
        names = {f.name for f in index.files()}
    assert names == {"faq.md", "hours.txt", "inner.md"}
    assert index.files()  # the second look says nothing more (no warning raised as error)
    assert not index.search("secret password", k=3)


@pytest.mark.parametrize("pattern", ["**/*", "**/*.txt", "sub/*", "*.txt"])
def test_a_glob_does_not_follow_a_link_out_of_its_root(linked, pattern):
    index = DocIndex([str(linked / pattern)])
    with pytest.warns(OrchnbWarning, match="outside"):
        files = index.files()
    assert all("passwd" not in str(f) for f in files)
    assert index.refused


def test_the_tool_answer_notes_the_refused_links(linked):
    search = doc_search([linked])
    with pytest.warns(OrchnbWarning):
        out = asyncio.run(search.invoke({"query": "refunds"}))
    assert "14 days" in out and "a link out of the searched folders" in out


def test_a_file_named_explicitly_may_be_a_link(linked):
    assert [f.name for f in DocIndex([linked / "notes.txt"]).files()] == ["notes.txt"]
