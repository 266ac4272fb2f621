"""``searcher watch``: the real command in a subprocess, a real folder and real file operations; each
step fails if the index has not caught up within a bound. The index is read from this process (files
and texts from SQLite: no model here)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from searcher import Searcher
from searcher.ingest.walk import PathRules, WalkOptions, walk, walk_paths

from .conftest import NOTES, create_index, write_tree

CATCH_UP = 60.0     # seconds a change may take to be searchable (a loaded machine; the benchmark says how fast)


class Watch:
    """A running ``searcher watch FOLDER --json``: its run lines, and the index as a reader sees it."""

    def __init__(self, folder: Path, index: Path, log: Path):
        self.folder, self.index, self.log = folder, index, log
        self.out = open(log, "w")
        self.err_path = log.with_suffix(".err")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "searcher", "watch", str(folder), "--index", str(index),
                                      "--json"], stdout=self.out, stderr=self.err, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def runs(self) -> list[dict]:
        return [r for r in map(json.loads, self.log.read_text().splitlines()) if "summary" in r]

    def messages(self) -> list[str]:
        return [r["message"] for r in map(json.loads, self.log.read_text().splitlines()) if "message" in r]

    def indexed(self) -> set[str]:
        if not (self.index / "manifest.json").exists():
            return set()
        with Searcher(self.index) as s:
            return {os.path.relpath(d["id"], self.folder) for d in s.files()["indexed"]}

    def text(self, rel: str) -> str:
        with Searcher(self.index) as s:
            docs = s.get([str(self.folder / rel)])
        return docs[0].text if docs else ""

    def until(self, what: str, check: Callable[[], bool], timeout: float = CATCH_UP) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"watch exited ({self.proc.returncode}): {self.err_path.read_text()}")
            if check():
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"the index fell behind: {what} not seen after {timeout} s; now {sorted(self.indexed())[:20]}")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(60)
        self.out.close()
        self.err.close()
        return self.proc.returncode, self.err_path.read_text()


@pytest.fixture(scope="module")
def empty_index(tmp_path_factory) -> Path:
    """An empty index made once (its query encoder exported), copied by each test."""
    path = tmp_path_factory.mktemp("template") / "idx"
    create_index(path, None)
    return path


@pytest.fixture
def watching(tmp_path: Path, empty_index: Path):
    folder = write_tree(tmp_path / "notes", NOTES)
    shutil.copytree(empty_index, tmp_path / "idx")
    w = Watch(folder, tmp_path / "idx", tmp_path / "watch.jsonl")
    yield w
    w.stop()


def test_watch_follows_edits_and_the_folder_vanishing_then_stops_cleanly(watching: Watch):
    w, folder = watching, watching.folder
    w.until("the first run", lambda: w.indexed() == set(NOTES), timeout=180)

    (folder / "ops/new.md").write_text("# Pager\n\nThe pager rota changes every Monday.\n")
    w.until("a created file", lambda: "ops/new.md" in w.indexed())

    with open(folder / "ops/new.md", "a") as f:
        f.write("\nEscalate to the duty manager after thirty minutes.\n")
    w.until("an append", lambda: "duty manager" in w.text("ops/new.md"))

    os.rename(folder / "ops/new.md", folder / "ops/pager.md")
    w.until("a rename", lambda: {"ops/pager.md"} <= w.indexed() and "ops/new.md" not in w.indexed())

    os.remove(folder / "cooking/bread.md")
    w.until("a delete", lambda: "cooking/bread.md" not in w.indexed())

    saved_at = time.time()          # runs that started later are the saves' (an earlier run may print later)
    # two editors' atomic saves at once: a hidden temporary file, and a visible one, renamed over the file
    (folder / "ops/.pager.md.swx").write_text("# Pager\n\nThe rota changes every Tuesday now.\n")
    (folder / "garden/tomatoes.rst.tmp").write_text("Tomatoes\n========\n\nWater them daily in July.\n")
    os.replace(folder / "ops/.pager.md.swx", folder / "ops/pager.md")
    os.replace(folder / "garden/tomatoes.rst.tmp", folder / "garden/tomatoes.rst")
    w.until("atomic saves", lambda: "Tuesday" in w.text("ops/pager.md") and "July" in w.text("garden/tomatoes.rst"))
    saves = lambda: [r["summary"] for r in w.runs() if r["started"] >= saved_at and r["summary"]]
    w.until("the saves' run lines", lambda: sum(r["updated"] for r in saves()) >= 2)   # printed after the commit
    saves = saves()
    # each save is one update (usually both in one batch; a busy machine may split the batch), no temporary
    # file is ever added or removed
    assert [sum(r[key] for r in saves) for key in ("updated", "added", "removed")] == [2, 0, 0], saves
    assert not any(p.endswith((".swx", ".tmp")) for p in w.indexed())

    (folder / "a folder").mkdir()
    (folder / "a folder/inner.md").write_text("Moved in with its folder.\n")
    os.rename(folder / "a folder", folder / "moved")
    w.until("a folder renamed", lambda: "moved/inner.md" in w.indexed() and "a folder/inner.md" not in w.indexed())
    shutil.move(str(folder / "moved"), str(folder.parent / "outside"))
    w.until("a folder moved out", lambda: "moved/inner.md" not in w.indexed())

    # the folder vanishes and comes back; Ctrl-C stops
    expected = w.indexed()

    away = folder.parent / "away"
    os.rename(folder, away)
    w.until("the message that the folder is gone", lambda: any("is gone" in m for m in w.messages()))
    time.sleep(1.5)
    assert w.indexed() == expected                  # nothing lost while it is away

    os.rename(away, folder)
    (folder / "back.md").write_text("Written after the folder came back.\n")
    w.until("a file added after the folder came back", lambda: "back.md" in w.indexed())
    assert any("is back" in m for m in w.messages())

    code, err = w.stop()
    assert code == 0 and "Traceback" not in err, err
    assert w.indexed() == expected | {"back.md"}


def test_watch_ignore_rules_and_a_burst_of_1000_files(watching: Watch):
    w, folder = watching, watching.folder
    w.until("the first run", lambda: w.indexed() == set(NOTES), timeout=180)

    (folder / ".gitignore").write_text("drafts/\n")
    (folder / "drafts").mkdir()
    (folder / "drafts/wip.md").write_text("Not ready to be found.\n")
    (folder / ".hidden.md").write_text("Hidden files are not read.\n")
    (folder / "seen.md").write_text("A file written after the ignored ones.\n")
    w.until("a file after ignored ones", lambda: "seen.md" in w.indexed())
    assert "drafts/wip.md" not in w.indexed() and ".hidden.md" not in w.indexed()

    (folder / ".gitignore").write_text("")            # the rules changed: the whole folder is re-checked
    w.until("a file no longer ignored", lambda: "drafts/wip.md" in w.indexed())

    burst_at = time.time()
    burst = folder / "burst"
    burst.mkdir()
    for i in range(1000):
        (burst / f"note{i:04d}.txt").write_text(f"Burst note {i % 10}: the weekly report for team {i % 7}.\n")
    names = {f"burst/note{i:04d}.txt" for i in range(1000)}
    w.until("a 1,000-file burst", lambda: names <= w.indexed(), timeout=240)
    made = lambda: [r for r in w.runs() if r["started"] >= burst_at and r["summary"] and r["summary"]["added"]]
    w.until("the burst's run lines", lambda: sum(r["summary"]["added"] for r in made()) >= 1000)
    made = made()
    assert 1 <= len(made) <= 5, [(r["paths"], r["summary"]["added"]) for r in made]

    shutil.rmtree(burst)
    w.until("a deleted folder of 1,000 files", lambda: not (names & w.indexed()), timeout=120)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 160 MiB tmpfs for the index (root only; skipped elsewhere)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mnt)], capture_output=True,
                      check=False).returncode:
        pytest.skip("a small disk needs mount (root): the full-disk test is skipped")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_watch_full_disk_keeps_the_index_and_retries(tmp_path: Path, small_disk: Path, empty_index: Path):
    folder = write_tree(tmp_path / "notes", NOTES)
    shutil.copytree(empty_index, small_disk / "idx")
    w = Watch(folder, small_disk / "idx", tmp_path / "watch.jsonl")
    try:
        w.until("the first run", lambda: w.indexed() == set(NOTES), timeout=180)
        filler = small_disk / "filler"
        with open(filler, "wb") as f:                 # leave nothing free
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        # more new text than the pages SQLite's files already hold could take
        big = "\n\n".join(f"Paragraph {i} about quarterly capacity planning and storage growth {i * 7}." for i in range(400))
        (folder / "big.md").write_text(big)
        w.until("a disk-full error", lambda: any("disk is full" in (r["error"] or "") for r in w.runs()))
        assert w.indexed() == set(NOTES)              # the failed run changed nothing
        filler.unlink()
        w.until("the retried run", lambda: "big.md" in w.indexed(), timeout=120)
    finally:
        code, err = w.stop()
    assert code == 0 and "Traceback" not in err, err


def test_walk_paths_yields_what_the_walk_yields_for_those_paths(tmp_path: Path):
    root = write_tree(tmp_path / "r", {**NOTES, ".gitignore": "*.log\nbuild/\n", "x.log": "ignored",
                                       "build/out.md": "ignored folder", ".h/a.md": "hidden",
                                       "img.png": b"\x89PNG", "sub/.gitignore": "skip.md\n", "sub/skip.md": "no",
                                       "sub/keep.md": "yes"})
    everything = {str(e.path): e for e in walk(root)}
    picked = [root / p for p in ("ops/logging.md", "x.log", "build/out.md", ".h/a.md", "img.png", "sub",
                                 "gone.md", "sub/keep.md")]
    got = {str(e.path): e for e in walk_paths(root, picked)}
    assert got == {p: e for p, e in everything.items() if p.startswith((str(root / "ops/logging.md"),
                                                                        str(root / "img.png"), str(root / "sub/")))}
    rules = PathRules(root, WalkOptions())
    assert [rules.excluded(root / p) for p in ("x.log", "build/new.md", ".h/a.md", "sub/skip.md", "sub/keep.md")] \
        == [True, True, True, True, False]
