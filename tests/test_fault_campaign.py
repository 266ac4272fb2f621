"""The fault campaign's small run, and the defects it found: a dead writer's temporary files, and a
full disk during the ONNX export recorded as a property of the model."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from searcher import Searcher
from searcher.errors import SearcherError
from searcher.store.locking import WriterLock

from .conftest import NOTES, write_tree

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("fault_campaign", REPO / "scripts" / "fault_campaign.py")
campaign = sys.modules["fault_campaign"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(campaign)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_dead_writers_temporary_files_are_removed_when_the_lock_is_next_taken(tmp_path: Path):
    dead, alive = _dead_pid(), os.getppid()
    leftovers = [f".encoder.onnx.{dead}.tmp", f".encoder.tokenizer.json.{dead}.tmp",
                 f".vectors.g000000000003.faiss.{dead}.tmp", f".vectors.g000000000003.json.{dead}.tmp"]
    kept = [f".encoder.onnx.{alive}.tmp",            # its writer still runs
            f"notes.{dead}.tmp", f".encoder.onnx.{dead}.tmp.bak", "encoder.onnx",   # not our temporary names
            f".vectors.gX.faiss.{dead}.tmp"]
    for name in leftovers + kept:
        (tmp_path / name).write_bytes(b"x" * 1000)
    with WriterLock(tmp_path):
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "write.lock"])


def test_a_full_disk_during_the_export_is_not_recorded_and_the_next_run_exports(tmp_path: Path, monkeypatch):
    """A real 8 MB tmpfs holding the index and the user cache: the index (a few hundred KB) fits,
    the ONNX export (90 MB) does not. (A damaged or deleted export: tests/test_shared_export.py.)"""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the suite runs as root in CI)")
    notes = write_tree(tmp_path / "notes", NOTES)
    with campaign.tmpfs(tmp_path / "disk", "8m") as disk:
        monkeypatch.setenv("SEARCHER_CACHE", str(disk / "cache"))
        s = Searcher(disk / "idx")
        with pytest.raises(SearcherError, match=r"the index is up to date, but exporting its model .* failed "
                                                r"\(No space left on device\); .*free space"):
            s.index(notes)
        assert "query_encoder" not in json.loads((disk / "idx" / "manifest.json").read_text())
        assert not list((disk / "idx").glob("*.tmp")) and not list((disk / "idx").glob(".*.tmp"))
        assert not list((disk / "cache" / "onnx").glob(".*.tmp"))
        assert s.search("how do I rotate the logs", k=1)[0].path.endswith("logging.md")   # with torch
        campaign.remount(disk, "size=400m")
        Searcher(disk / "idx").index(notes)
        info = Searcher(disk / "idx").info()["query_encoder"]
        assert info["active"] == "onnx" and info["kind"] == "onnx"


def test_the_small_campaign_holds_every_promise(tmp_path: Path):
    """Kills at events and a spread moment, damaged files, a disk that fills, hostile files,
    two writers, killed searches, and a server under abuse: every row must hold."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "fault_campaign.py"), "--size", "small",
                        "--work", str(tmp_path)], capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "FAIL" not in r.stdout and " held (" in r.stdout


def test_a_query_of_lone_surrogates_is_refused_in_one_line(tmp_path: Path):
    """Found by the campaign: JSON "\\ud800" in a server request was an HTTP 500 (the campaign's
    server section checks the 4xx now)."""
    notes = write_tree(tmp_path / "notes", NOTES)
    s = Searcher(tmp_path / "idx")
    s.index(notes)
    with pytest.raises(SearcherError, match="not valid Unicode"):
        s.search("logs \ud800 rotation")
