"""What a new user meets in the first hour: files with unfamiliar names, progress in a log, help
that reads well at 80 columns, identical files, scores on a stated scale, and the small promises
of the docs (each test here failed before the "first hour" fixes)."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from searcher import Searcher

from .conftest import run_cli, write_tree

RBASH = ("If bash is started with the name rbash, or the -r option is supplied at invocation, the shell "
         "becomes restricted. A restricted shell is used to set up an environment more controlled than the "
         "standard shell: changing directories with cd is not allowed.\n")
INTRO = "BASH is an acronym for Bourne Again SHell. It is the GNU shell, a command language interpreter.\n"
BIN_TEXT = "The quarterly inventory of the lighthouse lamps lists forty brass burners.\n"


@pytest.fixture
def odd_names(tmp_path: Path) -> Path:
    folder = write_tree(tmp_path / "docs", {"RBASH": RBASH, "notes.bin": BIN_TEXT,
                                            "blob": bytes(range(256)) * 40, "photo.png": b"\x89PNG\r\n\x1a\n" + bytes(64)})
    (folder / "INTRO.gz").write_bytes(gzip.compress(INTRO.encode()))
    return folder


def _search_json(idx: Path, query: str, *args: str) -> list[dict]:
    r = run_cli("search", query, "--index", str(idx), "--json", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_text_with_an_unfamiliar_name_is_read_and_the_advice_for_the_rest_works(odd_names: Path, tmp_path: Path):
    idx = tmp_path / "idx"
    r = run_cli("index", str(odd_names), "--index", str(idx), "--json")
    assert r.returncode == 0, r.stderr          # a binary file is not a failure to read a document
    files = {Path(json.loads(line)["path"]).name: json.loads(line) for line in r.stdout.splitlines()[:-1]}
    assert files["RBASH"]["status"] == files["INTRO.gz"]["status"] == "added"
    assert files["blob"]["status"] == "skipped" and files["blob"]["reason"].startswith("binary file")
    assert files["photo.png"]["reason"].startswith("binary file type: '.png'")
    advice = files["notes.bin"]["reason"]
    assert files["notes.bin"]["status"] == "skipped" and "--ext .bin" in advice
    assert _search_json(idx, "restricted shell cannot change directories", "-k", "1")[0]["path"].endswith("RBASH")
    assert _search_json(idx, "Bourne Again SHell acronym", "-k", "1")[0]["path"].endswith("INTRO.gz")

    # following the printed advice works: the file is indexed and found
    r = run_cli("index", str(odd_names), "--index", str(idx), "--ext", re.search(r"--ext ([^\s)]+)", advice).group(1))
    assert r.returncode == 0, r.stderr
    assert _search_json(idx, "lighthouse lamps brass burners", "-k", "1")[0]["path"].endswith("notes.bin")


def test_ext_takes_a_file_name_or_glob(odd_names: Path, tmp_path: Path):
    (odd_names / "archive.db").write_text("The ledger of the ferry tolls for the year 1887.\n")
    r = run_cli("index", str(odd_names), "--index", str(tmp_path / "idx"), "--ext", "ARCHIVE.*", "--json")
    assert r.returncode == 0, r.stderr
    statuses = {Path(json.loads(x)["path"]).name: json.loads(x)["status"] for x in r.stdout.splitlines()[:-1]}
    assert statuses["archive.db"] == "added" and statuses["notes.bin"] == "skipped"


def test_progress_is_printed_as_lines_when_the_output_is_not_a_terminal(odd_names: Path, tmp_path: Path):
    r = run_cli("index", str(odd_names), "--index", str(tmp_path / "idx"))
    lines = [x for x in r.stderr.splitlines() if x.startswith("indexing: ")]
    assert lines and re.fullmatch(r"indexing: (\d+)/\1 \(100%\), \d+s", lines[-1]), r.stderr
    (odd_names / "RBASH").write_text(RBASH + "Also: no redirection of output.\n")
    r = run_cli("index", str(odd_names), "--index", str(tmp_path / "idx"), "--quiet")
    assert "indexing" not in r.stderr and r.stdout == ""


COMMANDS = ("", "index", "search", "eval", "info", "delete", "migrate", "serve", "mcp", "similar", "duplicates",
            "outliers", "topics", "map", "watch")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_well_at_80_columns(command: str):
    r = run_cli(*[c for c in (command, "--help") if c], env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert max(map(len, text.splitlines())) <= 80
    assert "<bool>" not in text and "…" not in text
    usage = text.splitlines()[0]
    assert usage.startswith("Usage: searcher") and "{" not in usage, usage
    if command == "search":
        assert "  -k, --top N " in text and "--k" not in text
    options = text[text.index("Options:"):]
    for line in options.splitlines()[1:]:    # every option says what it does
        if line.startswith("  -"):
            assert len(line.split("  ")) > 2 or options.splitlines()[options.splitlines().index(line) + 1].startswith(" " * 10), line


CHANGES = ("Bash 5.2 changes: the `wait -p` builtin reports the process id of the job that ended; "
           "readline gains the `active-region-start-color` variable for highlighting pasted text.\n")
KEYS = "\n".join(["Key handling notes."] + [f"Line {i} says nothing in particular." for i in range(2, 8)]
                 + ["The escape key cancels the dialog and restores the previous selection."]) + "\n"


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    from .conftest import NOTES

    return write_tree(tmp_path / "docs", {**NOTES, "bash/CHANGES": CHANGES, "bash/changelog": CHANGES,
                                          "keys.txt": KEYS})


def test_identical_files_make_one_hit_that_lists_every_place(copies: Path, tmp_path: Path):
    s = Searcher(tmp_path / "idx")
    s.index(copies)
    hits = s.search("which builtin reports the process id of the job that ended", k=5)
    assert hits[0].path.endswith(("CHANGES", "changelog")) and len(hits[0].also) == 1
    assert {Path(hits[0].path).name, Path(hits[0].also[0].path).name} == {"CHANGES", "changelog"}
    assert sum(h.text == CHANGES.strip() or h.text == CHANGES for h in hits) == 1
    assert hits[0].to_dict()["also"][0]["location"] == ":1"
    assert len(s.search("which builtin reports the process id", k=5, fold_identical=False)[0].also) == 0
    r = run_cli("search", "which builtin reports the process id of the job that ended", "--index",
                str(tmp_path / "idx"), "-k", "2")
    assert r.returncode == 0, r.stderr
    assert re.search(r"also in: \S*bash/(CHANGES|changelog):1", r.stdout), r.stdout


def test_the_api_gives_the_snippet_line_the_cli_shows(copies: Path, tmp_path: Path):
    s = Searcher(tmp_path / "idx")
    s.index(copies)
    hit = s.search("escape key cancels the dialog", k=1)[0]
    assert hit.path.endswith("keys.txt") and hit.lines[0] == 1
    assert hit.snippet.startswith("The escape key cancels") and hit.snippet_line == 8
    assert hit.location() == ":1" and hit.location(hit.snippet_line) == ":8" and hit.to_dict()["snippet_line"] == 8
    r = run_cli("search", "escape key cancels the dialog", "--index", str(tmp_path / "idx"), "-k", "1")
    assert "keys.txt:8" in r.stdout.splitlines()[0]


def test_the_http_api_folds_identical_files_too(copies: Path, tmp_path: Path):
    from searcher.client import Client

    from .test_server import start_server, stop_server

    Searcher(tmp_path / "idx").index(copies)
    proc, url = start_server("--index", str(tmp_path / "idx"), log=tmp_path / "server.log")
    try:
        hit = Client(url).search("which builtin reports the process id of the job that ended", k=3)[0]
    finally:
        stop_server(proc)
    assert len(hit.also) == 1 and {Path(hit.path).name, Path(hit.also[0].path).name} == {"CHANGES", "changelog"}


def test_an_empty_folder_is_refused_before_any_model_loads_and_leaves_nothing(tmp_path: Path):
    from .test_query_encoder import HEAVY, _blocked_env

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    r = run_cli("index", str(tmp_path / "empty"), "--index", str(tmp_path / "idx"), env=_blocked_env(tmp_path, HEAVY))
    assert r.returncode == 1 and "nothing to index" in r.stderr and "photo.png" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "idx").exists()


def test_hybrid_scores_are_on_a_0_to_1_scale_with_the_raw_legs_kept(copies: Path, tmp_path: Path):
    s = Searcher(tmp_path / "idx")
    s.index(copies)
    query = "escape key cancels the dialog"
    hits = s.search(query, k=5)
    scores = [h.score for h in hits]
    assert all(0.0 <= x <= 1.0 for x in scores) and scores == sorted(scores, reverse=True) and scores[0] > 0.5
    top = hits[0]
    dense = {(h.id, h.chunk): h.score for h in s.search(query, k=20, mode="dense")}
    keyword = {(h.id, h.chunk): h.score for h in s.search(query, k=20, mode="keyword")}
    assert abs(top.scores["dense"] - dense[(top.id, top.chunk)]) < 1e-4
    assert abs(top.scores["keyword"] - keyword[(top.id, top.chunk)]) < 1e-4
    assert top.scores["fused"] > 0
    r = run_cli("search", query, "--index", str(tmp_path / "idx"), "--json", "-k", "1")
    assert json.loads(r.stdout)["scores"]["dense"] == pytest.approx(top.scores["dense"], abs=1e-4)
    kept = s.search(query, k=5, min_score=scores[1] + 1e-9)    # --min-score is on the same 0..1 scale
    assert [(h.id, h.chunk) for h in kept] == [(top.id, top.chunk)]
