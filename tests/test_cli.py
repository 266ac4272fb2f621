"""The real ``searcher`` command in fresh processes: output formats, help, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    from .conftest import NOTES, write_tree

    base = tmp_path_factory.mktemp("cli")
    notes = write_tree(base / "notes", NOTES)
    r = run_cli("index", str(notes), "--index", str(base / "idx"), "--json")
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
    assert first[0] == "1" and 0 < float(first[1]) <= 1 and first[2].endswith("logging.md:1")
    r = run_cli("search", "how do I rotate the logs", "--index", str(idx), "-k", "3", "--json")
    hits = [json.loads(x) for x in r.stdout.splitlines()]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert set(hits[0]) >= {"id", "path", "score", "text", "lines", "chunk", "chars", "metadata"}
    assert hits[0]["path"] == str(notes / "ops" / "logging.md")


def test_info(built):
    _, idx = built
    r = run_cli("info", "--index", str(idx))
    assert r.returncode == 0, r.stderr
    assert "all-MiniLM-L6-v2" in r.stdout and "exact (FAISS" in r.stdout and "MiB" in r.stdout
    data = json.loads(run_cli("info", "--index", str(idx), "--json").stdout)
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
