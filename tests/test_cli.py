"""The real ``searcher`` command in fresh processes: output formats, help, and one-line errors.

The tests on the ``built`` index run once per vector store (FAISS, and Milvus through milvus-lite,
which the test process never opens, so each command can)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import NOTES, STORES, run_cli


@pytest.fixture(scope="module", params=STORES)
def built(request, tmp_path_factory) -> tuple[Path, Path]:
    from .conftest import NOTES, write_tree

    if request.param == "milvus":
        pytest.importorskip("milvus_lite")
    base = tmp_path_factory.mktemp("cli")
    notes = write_tree(base / "notes", NOTES)
    store = ["--milvus-uri", str(base / "milvus.db")] if request.param == "milvus" else []
    r = run_cli("index", str(notes), "--index", str(base / "idx"), *store, "--json")
    assert r.returncode == 0, r.stderr
    return notes, base / "idx"


def test_index_json_reports_each_file_and_a_summary(built):
    notes, idx = built
    (notes / "extra.txt").write_text("Printer jams are cleared by opening the rear tray.\n")
    r = run_cli("index", str(notes), "--index", str(idx), "--json")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    files = {Path(x["path"]).name: x for x in lines[:-1]}
    assert files["extra.txt"]["status"] == "added" and files["extra.txt"]["chunks"] == 1
    assert files["bread.md"] == {"path": str(notes / "cooking" / "bread.md"), "status": "unchanged",
                                 "kind": "markdown"}
    assert lines[-1]["summary"]["added"] == 1 and lines[-1]["summary"]["unchanged"] == 5
    r = run_cli("index", str(notes), "--index", str(idx))
    assert r.stdout.startswith("0 added, 0 updated, 6 unchanged, 0 removed, 0 skipped")


def test_search_human_and_json(built):
    notes, idx = built
    r = run_cli("search", "how do I rotate the logs", "--index", str(idx), "-k", "2")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0].split()
    # the line shown is the line of the sentence that answers, inside the hit's chunk
    answer = NOTES["ops/logging.md"].splitlines().index(next(
        ln for ln in NOTES["ops/logging.md"].splitlines() if ln.startswith("Logs are rotated"))) + 1
    assert first[0] == "1" and 0 < float(first[1]) <= 1 and first[2].endswith(f"logging.md:{answer}")
    r = run_cli("search", "how do I rotate the logs", "--index", str(idx), "-k", "3", "--json")
    hits = [json.loads(x) for x in r.stdout.splitlines()]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert set(hits[0]) >= {"id", "path", "score", "text", "lines", "chunk", "chars", "metadata"}
    assert hits[0]["path"] == str(notes / "ops" / "logging.md")


def test_info(built):
    _, idx = built
    r = run_cli("info", "--index", str(idx))
    assert r.returncode == 0, r.stderr
    data = json.loads(run_cli("info", "--index", str(idx), "--json").stdout)
    ann = "exact (FAISS" if data["vector_store"] == "faiss" else "milvus collection searcher_"
    assert "all-MiniLM-L6-v2" in r.stdout and ann in r.stdout and "MiB" in r.stdout
    assert data["files"] >= 5 and data["model"]["dim"] == 384 and data["disk_bytes"] > 0


@pytest.mark.parametrize("args,needle", [
    (["index", "/definitely/not/here"], "no such file or folder"),
    (["search", "anything", "--index", "/tmp/searcher-no-such-index"], "no index at"),
    (["search", "   "], "query is empty"),
    (["search", "logs", "-k", "0"], "k must be"),
    (["info", "--index", "/tmp/searcher-no-such-index"], "no index at"),
    (["index", ".", "--max-file-size", "lots"], "--max-file-size"),
    (["search", "x", "--name", "../escape"], "--name"),
])
@pytest.mark.parametrize("built", ["faiss"], indirect=True)   # found before any vector is read
def test_errors_are_one_line_without_traceback(built, args, needle):
    _, idx = built
    if args[0] == "search" and "--index" not in args and "--name" not in args:
        args = [*args, "--index", str(idx)]
    r = run_cli(*args)
    assert r.returncode != 0
    assert needle in r.stderr and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def test_empty_folder_is_an_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    r = run_cli("index", str(tmp_path / "empty"), "--index", str(tmp_path / "idx"))
    assert r.returncode == 1 and "nothing to index" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("cmd", [[], ["index"], ["search"], ["info"], ["delete"]])
def test_help_everywhere(cmd):
    r = run_cli(*cmd, "--help")
    assert r.returncode == 0 and "Usage:" in r.stdout
    if cmd:
        assert "--index" in r.stdout


def test_delete_by_path(built):
    notes, idx = built
    r = run_cli("delete", str(notes / "garden" / "tomatoes.rst"), "--index", str(idx))
    assert r.returncode == 0 and r.stdout.startswith("1 of 1")
    r = run_cli("search", "tomato plants", "--index", str(idx), "--json")
    assert all(not json.loads(x)["path"].endswith("tomatoes.rst") for x in r.stdout.splitlines())


# ---- real document folders: locations, per-type summary, exit status, info --files ------------------
@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path, object]:
    """A folder of real formats plus one broken PDF and one image, indexed once by the CLI."""
    from . import makefiles as mk

    base = tmp_path_factory.mktemp("library")
    docs = base / "docs"
    docs.mkdir()
    mk.pdf(docs / "paper.pdf")
    sentence = "Apt installs the package and its dependencies, then the service starts on boot. "
    (docs / "guide.md").write_text(f"# Guide\n\n{'Welcome to the guide. ' * 30}\n\n## Install\n\n"
                                   f"{'Read this first. ' * 30}\n\n### Linux\n\n{sentence * 8}\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 100)
    (docs / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    r = run_cli("index", str(docs), "--index", str(base / "idx"))
    return docs, base / "idx", r


def test_index_summary_per_type_and_exit_status_3_when_a_file_fails(library):
    docs, idx, r = library
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("2 added, 0 updated, 0 unchanged, 0 removed, 2 skipped;")
    table = {ln.split()[0]: ln.split()[1:] for ln in lines[1:] if ln.startswith("  ") and ln.split()[0] in
             ("type", "markdown", "pdf")}
    assert table["type"] == ["read", "unchanged", "chunks", "failed"]
    assert table["markdown"][0] == "1" and table["pdf"][0] == "1" and table["pdf"][3] == "1"
    assert "  skipped 1: corrupt PDF" in lines and "  skipped 1: binary file type" in lines
    assert any(ln.startswith("  ! ") and ln.endswith(f"broken.pdf: {ln.split(': ', 1)[1]}") and "corrupt PDF" in ln
               for ln in lines)
    # nothing changed, the broken file is still broken: --strict makes it an error that lists it
    r = run_cli("index", str(docs), "--index", str(idx), "--strict", "-q")
    assert r.returncode == 1
    err = r.stderr.splitlines()
    assert err[0] == "error: 1 file could not be indexed (--strict):"
    assert err[1].endswith("broken.pdf: " + err[1].split(": ", 1)[1]) and "corrupt PDF" in err[1]


def test_an_unsupported_type_alone_does_not_change_the_exit_status(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Some text about gardening.\n")
    (docs / "photo.png").write_bytes(b"\x89PNG")
    r = run_cli("index", str(docs), "--index", str(tmp_path / "idx"), "--strict")
    assert r.returncode == 0, r.stderr
    assert "skipped 1: binary file type" in r.stdout


def test_search_shows_page_line_and_heading(library):
    docs, idx, _ = library
    r = run_cli("search", "apt installs the package and starts the service", "--index", str(idx), "-k", "1")
    guide = (docs / "guide.md").read_text().splitlines()
    line = next(i for i, ln in enumerate(guide, 1) if ln.startswith("Apt installs"))   # the answer's line
    assert r.stdout.splitlines()[0].split(None, 2)[2] == f"{docs / 'guide.md'}:{line} (Guide > Install > Linux)"
    r = run_cli("search", "ground penetrating radar survey", "--index", str(idx), "-k", "1", "--json")
    hit = json.loads(r.stdout)
    assert (hit["path"], hit["page"], hit["heading"]) == (str(docs / "paper.pdf"), 2, "2 Methods")
    assert hit["location"] == "p.2 (2 Methods)"     # what the human output prints after the path
    assert hit["text"].startswith("2 Methods\nWe measured the thickness of the ice")


def test_info_files_lists_indexed_and_skipped_with_reasons(library):
    docs, idx, _ = library
    r = run_cli("info", "--index", str(idx), "--files")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "indexed (2):" and out[3] == "skipped (2):"
    assert out[1].startswith(f"  {docs / 'guide.md'}  [markdown, ") and out[2].startswith(f"  {docs / 'paper.pdf'}  [pdf, 3 chunks]")
    assert out[4].startswith(f"  {docs / 'broken.pdf'}: corrupt PDF")
    assert out[5] == f"  {docs / 'photo.png'}: binary file type: '.png' (if it holds text, add it with --ext .png)"
    data = json.loads(run_cli("info", "--index", str(idx), "--files", "--json").stdout)
    assert {Path(d["id"]).name: d["kind"] for d in data["indexed"]} == {"guide.md": "markdown", "paper.pdf": "pdf"}
    assert {Path(d["path"]).name: (d["kind"], d["failed"]) for d in data["skipped"]} == {
        "broken.pdf": ("pdf", True), "photo.png": (None, False)}
