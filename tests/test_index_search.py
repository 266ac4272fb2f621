"""Index a real folder with the real model, search it, and re-index it incrementally.

Every test runs once per vector store (the ``vector_store`` fixture: FAISS, and Milvus through
milvus-lite), except the two about the FAISS file in the index folder."""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from searcher import Searcher, SearcherError
from searcher.store.faiss_index import saved_files


def _by_path(report):
    return {Path(f.path).name: f for f in report.files}


def test_index_then_search_finds_the_answer_with_file_and_line(tmp_path: Path, notes: Path, vector_store):
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    report = s.index(notes)
    assert report.count("added") == 5 and report.count("skipped") == 0
    hits = s.search("how do I rotate the logs", k=3)
    top = hits[0]
    assert top.path == str(notes / "ops" / "logging.md") and top.id == top.path
    assert "logrotate" in top.text and top.lines[0] <= 7 <= top.lines[1]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert s.search("baking sourdough", k=1)[0].path.endswith("bread.md")
    with pytest.raises(dataclasses.FrozenInstanceError):
        top.score = 1.0  # type: ignore[misc]


def test_incremental_reindex_reembeds_only_changed_text(tmp_path: Path, notes: Path, vector_store):
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    s.index(notes)
    bread, backup = notes / "cooking" / "bread.md", notes / "ops" / "backup.txt"
    bread.write_text(bread.read_text() + "\nAdd a pinch of salt before baking.\n")
    # backup.txt: same content, new mtime -> read again but recognised as unchanged by its hash
    os.utime(backup, ns=(time.time_ns(), time.time_ns() + 10**9))
    (notes / "garden" / "tomatoes.rst").unlink()
    (notes / "new.md").write_text("Kubernetes pods restart when the liveness probe fails.\n")
    report = s.index(notes)
    by = _by_path(report)
    assert by["bread.md"].status == "updated" and by["bread.md"].embedded == 1
    assert by["backup.txt"].status == "unchanged"
    assert by["tomatoes.rst"].status == "removed"
    assert by["new.md"].status == "added" and by["new.md"].embedded == 1
    assert report.count("unchanged") == 3
    assert s.search("why did my pod restart", k=1)[0].path.endswith("new.md")
    assert all(not h.path.endswith("tomatoes.rst") for h in s.search("watering tomato plants", k=10))
    # a third run with nothing changed reads nothing and embeds nothing
    again = s.index(notes)
    assert again.count("unchanged") == 5 and again.embedded == 0


def test_editing_one_paragraph_of_a_long_file_reembeds_few_chunks(tmp_path: Path, vector_store):
    folder = tmp_path / "docs"
    folder.mkdir()
    paras = [f"Paragraph {i} describes component {i} of the system in enough words to matter. " * 4
             for i in range(40)]
    f = folder / "long.md"
    f.write_text("\n\n".join(paras))
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    first = s.index(folder).files[0]
    assert first.chunks >= 10
    paras[20] = "This paragraph was rewritten completely to talk about something else entirely."
    f.write_text("\n\n".join(paras))
    second = s.index(folder).files[0]
    assert second.status == "updated" and 1 <= second.embedded <= 3


def test_skips_are_reported_with_reasons(tmp_path: Path, vector_store):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "ok.md").write_text("A perfectly fine note about databases.\n")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "empty.txt").write_text("")
    (folder / "image.jpg").write_bytes(b"\xff\xd8\xff")
    report = Searcher(tmp_path / "idx", vector_store=vector_store).index(folder)
    by = _by_path(report)
    assert by["ok.md"].status == "added"
    assert (by["binary.txt"].status, by["binary.txt"].reason) == ("skipped", "binary file")
    assert (by["empty.txt"].status, by["empty.txt"].reason) == ("skipped", "empty file")
    assert by["image.jpg"].reason.startswith("binary file type")
    assert report.summary()["skipped_reasons"] == {"binary file": 1, "empty file": 1, "binary file type": 1}


def test_file_that_becomes_unreadable_keeps_its_previous_version(tmp_path: Path, notes: Path, vector_store):
    if os.geteuid() == 0:
        pytest.skip("root can read files without permission bits")
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    s.index(notes)
    p = notes / "ops" / "logging.md"
    p.write_text(p.read_text() + "\nmore\n")
    p.chmod(0)
    try:
        by = _by_path(s.index(notes))
    finally:
        p.chmod(0o644)
    assert by["logging.md"].status == "skipped" and "previous version kept" in by["logging.md"].reason
    assert s.search("rotate logs", k=1)[0].path == str(p)


def test_add_delete_and_metadata(tmp_path: Path, vector_store):
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    ids = s.add(["The cat sat on the warm mat.", "Quarterly revenue grew by twelve percent."],
                ids=["cat", "rev"], metadata=[{"kind": "pet"}, {"kind": "finance"}])
    assert ids == ["cat", "rev"]
    hit = s.search("company earnings", k=1)[0]
    assert (hit.id, hit.path, hit.metadata, hit.lines) == ("rev", None, {"kind": "finance"}, (1, 1))
    generated = s.add(["An untitled note about volcanoes erupting."])
    assert len(generated) == 1 and s.search("volcano", k=1)[0].id == generated[0]
    s.add(["Quarterly revenue fell sharply this year."], ids=["rev"], metadata=[{"kind": "finance"}])
    assert "fell" in s.search("company earnings", k=1)[0].text  # same id replaces the document
    assert s.delete(["rev", "missing"]) == 1
    assert all(h.id != "rev" for h in s.search("company earnings", k=10))
    assert s.info()["documents"] == 2
    with pytest.raises(SearcherError, match="list of texts"):
        s.add("just one string")  # type: ignore[arg-type]
    import datetime
    with pytest.raises(SearcherError, match="metadata for id 'when' is not JSON"):
        s.add(["A dated note."], ids=["when"], metadata=[{"at": datetime.date(2026, 1, 1)}])
    assert s.info()["documents"] == 2   # nothing written


# FAISS only: about the vector file in the index folder (a Milvus store is caught up or rebuilt
# from SQLite by generation: tests/test_milvus.py)
def test_vector_index_is_rebuilt_from_sqlite(tmp_path: Path, notes: Path):
    idx = tmp_path / "idx"
    s = Searcher(idx)
    s.index(notes)
    before = [(h.id, round(h.score, 5)) for h in s.search("backups on sunday", k=5)]
    for p, _ in saved_files(idx):
        p.unlink()
    assert [(h.id, round(h.score, 5)) for h in Searcher(idx).search("backups on sunday", k=5)] == before


# FAISS only, as above
def test_stale_vector_file_catches_up_with_the_store(tmp_path: Path, notes: Path):
    idx = tmp_path / "idx"
    s = Searcher(idx)
    s.index(notes)
    (old,) = saved_files(idx)
    kept = old[0].read_bytes()
    (notes / "cooking" / "bread.md").unlink()
    (notes / "cooking" / "soup.md").write_text("Simmer the lentil soup for half an hour.\n")
    s.index(notes)
    # put the older vector file back in place of the new one: a reader must catch up from SQLite
    for p, _ in saved_files(idx):
        p.unlink()
    old[0].write_bytes(kept)
    fresh = Searcher(idx)
    assert fresh.search("lentil soup", k=1)[0].path.endswith("soup.md")
    assert all(not h.path.endswith("bread.md") for h in fresh.search("sourdough", k=10))


def test_model_mismatch_and_chunking_mismatch_are_errors(tmp_path: Path, notes: Path, tiny_model: Path,
                                                        vector_store):
    idx = tmp_path / "idx"
    Searcher(idx, vector_store=vector_store).index(notes)
    with pytest.raises(SearcherError, match="different model"):
        Searcher(idx, model=str(tiny_model)).search("logs")
    with pytest.raises(SearcherError, match="different model"):
        Searcher(idx, model=str(tiny_model)).index(notes)
    with pytest.raises(SearcherError, match="chunk size"):
        Searcher(idx, chunk_tokens=100).index(notes)
    # the same weights under another name are the same model
    assert Searcher(idx, model="sentence-transformers/all-MiniLM-L6-v2").search("logs", k=1)


def test_other_model_builds_and_searches_its_own_index(tmp_path: Path, notes: Path, tiny_model: Path,
                                                      vector_store):
    s = Searcher(tmp_path / "tiny", model=str(tiny_model), vector_store=vector_store)
    s.index(notes)
    info = s.info()
    assert info["model"]["dim"] == 32 and info["chunking"]["max_tokens"] == 62
    assert len(Searcher(tmp_path / "tiny").search("logs", k=3)) == 3  # the manifest names the model


@pytest.mark.parametrize("query,k,msg", [("   ", 5, "query is empty"), ("logs", 0, "k must be")])
def test_bad_queries(tmp_path: Path, notes: Path, query: str, k: int, msg: str, vector_store):
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    s.index(notes)
    with pytest.raises(SearcherError, match=msg):
        s.search(query, k=k)


def test_missing_index_missing_folder_empty_folder(tmp_path: Path, vector_store):
    with pytest.raises(SearcherError, match="no index at"):
        Searcher(tmp_path / "nope").search("x")
    with pytest.raises(SearcherError, match="no such file or folder"):
        Searcher(tmp_path / "idx", vector_store=vector_store).index(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SearcherError, match="nothing to index"):
        Searcher(tmp_path / "idx", vector_store=vector_store).index(tmp_path / "empty")
    assert not (tmp_path / "idx" / "manifest.json").exists() or Searcher(tmp_path / "idx").info()["files"] == 0


def test_index_of_another_schema_version_is_a_clear_error(tmp_path: Path, notes: Path, vector_store):
    import sqlite3

    idx = tmp_path / "idx"
    Searcher(idx, vector_store=vector_store).index(notes)
    with sqlite3.connect(idx / "searcher.db") as c:
        c.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    with pytest.raises(SearcherError, match="schema version 1 is not the version"):
        Searcher(idx).search("logs")


def test_out_of_range_filters_are_clear_errors(tmp_path: Path, notes: Path, vector_store):
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    s.index(notes)
    with pytest.raises(SearcherError, match="POSIX seconds"):
        s.search("logs", filters={"modified_after": 1e300})
    with pytest.raises(SearcherError, match="too large"):
        s.search("logs", filters={"metadata": {"n": 2**70}})


def test_index_path_that_is_a_file_is_a_clear_error(tmp_path: Path, notes: Path, vector_store):
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    for call in (lambda s: s.search("logs"), lambda s: s.index(notes), lambda s: s.add(["text"])):
        with pytest.raises(SearcherError, match="is a file, not an index folder"):
            call(Searcher(f, vector_store=vector_store))
    assert f.read_text() == "x"
