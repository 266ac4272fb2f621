"""kill -9 and Ctrl-C in the middle of an index run, the writer lock, and searching during a run."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from searcher import Searcher
from searcher.errors import LockedError
from searcher.store.locking import WriterLock

from .conftest import run_cli, write_tree

TOPICS = ["volcanoes", "glaciers", "deserts", "rainforests", "coral reefs", "tundra", "savannas", "wetlands"]


def _big_folder(root: Path, n: int) -> Path:
    """n files of a few paragraphs each: enough work that an index run takes several seconds."""
    files = {}
    for i in range(n):
        t = TOPICS[i % len(TOPICS)]
        files[f"f{i:04d}.md"] = "\n\n".join(
            f"Field note {i}.{j}: observations about {t}, sample {i * 7 + j}, recorded at station {j}. "
            f"The team measured temperature, humidity and the behaviour of the local wildlife near the {t}."
            for j in range(4))
    return write_tree(root, files)


def _generation(idx: Path) -> int:
    try:
        with sqlite3.connect(idx / "searcher.db", timeout=30) as c:
            row = c.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    except sqlite3.Error:
        return -1
    return -1 if row is None else int(row[0])   # None: the database is being created right now


def _start_index(folder: Path, idx: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "searcher", "index", str(folder), "--index", str(idx),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_commit(proc: subprocess.Popen, idx: Path, after_gen: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while _generation(idx) <= after_gen:
        assert proc.poll() is None, f"index run ended before it could be interrupted: {proc.stderr.read()}"
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture
def indexed(tmp_path: Path, notes: Path) -> tuple[Path, Path]:
    idx = tmp_path / "idx"
    Searcher(idx).index(notes)
    return notes, idx


def test_sigkill_mid_run_keeps_old_index_and_rerun_finishes(tmp_path: Path, indexed):
    notes, idx = indexed
    _big_folder(notes / "field", 330)
    gen0 = _generation(idx)
    proc = _start_index(notes, idx)
    _wait_for_commit(proc, idx, gen0)       # at least one batch committed, the run still going
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the old content answers, from a fresh process, without the killed run's vector file
    r = run_cli("search", "how do I rotate the logs", "--index", str(idx), "--json", "-k", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["path"].endswith("logging.md")
    partial = Searcher(idx).info()["files"]
    assert 5 < partial < 335                 # the committed batches are there, not the rest
    # the next run finishes the job and re-embeds nothing that was committed
    r = run_cli("index", str(notes), "--index", str(idx), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])["summary"]
    assert summary["added"] == 335 - partial and summary["unchanged"] == partial
    assert Searcher(idx).info()["files"] == 335
    hits = Searcher(idx).search("observations about coral reefs at a station", k=5)
    assert all("coral reefs" in h.text for h in hits)


def test_ctrl_c_is_a_clean_exit_and_a_rerun_completes(tmp_path: Path, indexed):
    notes, idx = indexed
    _big_folder(notes / "field", 300)
    gen0 = _generation(idx)
    proc = _start_index(notes, idx)
    _wait_for_commit(proc, idx, gen0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().startswith("interrupted:") and "Traceback" not in err
    assert Searcher(idx).search("rotate the logs", k=1)[0].path.endswith("logging.md")
    assert run_cli("index", str(notes), "--index", str(idx), "-q").returncode == 0
    assert Searcher(idx).info()["files"] == 305


def test_search_works_while_an_index_run_is_in_progress(tmp_path: Path, indexed):
    notes, idx = indexed
    _big_folder(notes / "field", 300)
    gen0 = _generation(idx)
    proc = _start_index(notes, idx)
    try:
        _wait_for_commit(proc, idx, gen0)
        s = Searcher(idx)
        assert s.search("rotate the logs", k=1)[0].path.endswith("logging.md")
        # a second writer is refused with a clear message while the first runs
        with pytest.raises(LockedError, match=r"another process \(pid \d+"):
            Searcher(idx).index(notes)
        r = run_cli("index", str(notes), "--index", str(idx))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "another process" in r.stderr
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_dead_process_is_recovered(tmp_path: Path):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys,time; from pathlib import Path; from searcher.store.locking import WriterLock;"
                               "l=WriterLock(Path(sys.argv[1])); l.acquire(); print('held', flush=True);"
                               "time.sleep(600)", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockedError):
        WriterLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "write.lock").exists()   # the file stays behind ...
    with WriterLock(tmp_path):                 # ... but the lock died with its process
        pass
