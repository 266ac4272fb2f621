#!/usr/bin/env python
"""The fault campaign: kill, starve, corrupt and abuse searcher, then check every promise it makes.

Sections (``--only`` picks some): process faults (SIGKILL/SIGINT/SIGTERM at spread moments and at
named events of a first and an incremental run, and a copy of the index taken mid-run), storage
faults (a tmpfs that fills, a read-only index, damaged vector file, manifest, WAL and ONNX file),
hostile input files, concurrency, server abuse. After a process fault: ``PRAGMA integrity_check``,
a search, untouched documents still found, a rerun that completes, and the final index equal to one
built from scratch (same documents and chunks, same top 5 for 5 queries).

Each case runs under a timeout and gives one row: the case, what happened, and whether the promise
held. The exit status is 1 when any did not. Storage faults need root (tmpfs mounts); without it
those cases are reported as skipped.

    python scripts/fault_campaign.py --size small               # the test suite's run, ~1 min
    python scripts/fault_campaign.py --size full --write-docs docs/reliability.md
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import QUERIES, free_port, make_corpus, paragraph, pct, unique_word, wait_for_server

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
ENV.pop("SEARCHER_TOKEN", None)
CHECK_QUERIES = QUERIES[:5]
SIZES = {   # base: files first indexed; added: files the edit adds; *_spread: kills at spread moments; events: named
    "small": {"base": 24, "added": 40, "first_spread": 0, "incr_spread": 0, "first_events": (), "fresh": False,
              "events": ("commit",), "signals": ("SIGKILL",), "spread_signals": (), "raised": False, "tiny_files": 300,
              "abuse_conns": 100, "load_seconds": 0, "leave_out": (
                  "copy of the folder", "encoder.onnx", "vector file truncated", "vector file deleted", "vector metadata", "searcher.db content", "encoder.tokenizer", "-wal", "search processes",
                  "zero bytes", "NUL", "invalid UTF", "UTF-16", "a file name with", "symlink loop", "a socket",
                  "a 5 MB", "200 nested", ".docx that", "zip bomb", "PDF with", "truncated PDF", "50 MB", "markdown",
                  "notebook", "a folder named", "a 9 MB", "a file deleted", "a file truncated", "unreadable")},
    "full": {"base": 40, "added": 120, "first_spread": 1, "incr_spread": 3, "fresh": True,
             "first_events": ("export",), "events": ("commit", "removals", "vectors"), "signals": ("SIGKILL",),
             "spread_signals": ("SIGKILL", "SIGINT", "SIGTERM"), "raised": True, "tiny_files": 20_000,
             "abuse_conns": 1000, "load_seconds": 20},
}


@dataclass
class Row:
    section: str
    case: str
    ok: bool | None        # None: not run here (and why is in the outcome)
    outcome: str
    seconds: float


@dataclass
class Campaign:
    work: Path
    size: dict
    rows: list[Row] = field(default_factory=list)
    only_case: str | None = None

    def wants(self, name: str) -> bool:
        """Whether this size runs the case (the small size leaves some out)."""
        return (not any(name.startswith(left_out) for left_out in self.size.get("leave_out", ()))
                and (self.only_case is None or self.only_case in name or name.startswith("first, fresh")))

    def case(self, section: str, name: str, fn: Callable[[], str], timeout: float = 300) -> None:
        """Run one case: its function returns the outcome or raises ``Broken`` (or anything else:
        a promise broken by the campaign itself is a failure too). Bounded by ``timeout``."""
        if not self.wants(name):
            return
        t = time.monotonic()
        box: dict = {}

        def target():
            try:
                box["out"] = fn()
            except Skip as exc:
                box["skip"] = str(exc)
            except BaseException as exc:  # noqa: BLE001 - every failure becomes a row
                box["err"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"

        th = threading.Thread(target=target, daemon=True)
        th.start()
        th.join(timeout)
        dt = time.monotonic() - t
        if th.is_alive():
            row = Row(section, name, False, f"no answer in {timeout:.0f} s (hang)", dt)
        elif "skip" in box:
            row = Row(section, name, None, "skipped: " + box["skip"], dt)
        elif "err" in box:
            row = Row(section, name, False, box["err"], dt)
        else:
            row = Row(section, name, True, box["out"], dt)
        self.rows.append(row)
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[row.ok]
        print(f"{mark} {section:<12} {name:<44} {dt:6.1f}s  {row.outcome}", flush=True)


class Broken(AssertionError):
    """A promise did not hold."""


class Skip(Exception):
    """The case cannot run on this machine (the reason is reported)."""


def need(cond: bool, what: str) -> None:
    if not cond:
        raise Broken(what)


# ---- processes ---------------------------------------------------------------------------------
@dataclass
class Ran:
    rc: int
    out: str
    err: str
    seconds: float
    rss_mb: float
    timed_out: bool = False


def searcher_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "searcher", *args]


def run(args: list[str], timeout: float = 300, env: dict | None = None) -> Ran:
    """Run to the end (its process group killed at ``timeout``), with its peak RSS from GNU time."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as rss:
        t = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name, *args], stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, env=env or ENV, start_new_session=True)
        try:
            p.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            timed_out = True
        out.seek(0)
        err.seek(0)
        kb = Path(rss.name).read_text().split()
        return Ran(p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                   time.monotonic() - t, int(kb[-1]) / 1024 if kb and kb[-1].isdigit() else float("nan"), timed_out)


def one_line_error(r: Ran) -> bool:
    lines = r.err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.err


def index_cmd(folder: Path, idx: Path, *extra: str) -> list[str]:
    return searcher_cmd("index", str(folder), "--index", str(idx), "--quiet", *extra)


# ---- the corpus and what "intact" means ------------------------------------------------------------
def change_folder(root: Path, added: int) -> list[str]:
    """Edit the folder as a user would: ``added`` new files, 3 changed, 3 removed (their names are
    returned). Every other file is untouched."""
    files = sorted((root / "stable").glob("*.md"))
    for p in files[-3:]:
        p.unlink()
    rng = random.Random(5)
    for p in files[-6:-3]:
        p.write_text(p.read_text() + "\n\nAn added paragraph. " + paragraph(rng, "changes", 4) + "\n")
    for i in range(added):
        (root / "new").mkdir(exist_ok=True)
        (root / "new" / f"n{i:04d}.md").write_text(
            f"# New {i}\n\nThe marker {unique_word(i, 'newf')} appears only here.\n\n"
            + "\n\n".join(paragraph(rng, QUERIES[(i + j) % len(QUERIES)], 6) for j in range(4)) + "\n")
    return [p.name for p in files[-3:]]


def untouched(base_n: int) -> list[tuple[str, str]]:
    """(file name, its unique word) of a few documents no run changes."""
    return [(f"s{i:03d}.md", unique_word(i, "stab")) for i in range(0, base_n - 6, max(1, (base_n - 6) // 4))]


def integrity(idx: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{idx / 'searcher.db'}?mode=ro", uri=True, timeout=30)) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def intact(idx: Path, base_n: int) -> str:
    """Integrity, a search, and every untouched document found by its own word; raises Broken."""
    from searcher import Searcher

    need(integrity(idx) == "ok", "integrity_check failed")
    with Searcher(idx) as s:
        need(len(s.search(CHECK_QUERIES[0], k=5)) > 0, "a search found nothing")
        for name, word in untouched(base_n):
            hits = s.search(word, k=1, mode="keyword")
            need(bool(hits) and hits[0].path.endswith(name), f"untouched {name} not found by '{word}'")
    return "intact"


NEAR_TIE = 2e-3   # first runs embed with torch, later ones with the ONNX export checked to agree with it


@dataclass(frozen=True)
class Fingerprint:
    """What must equal between an index and one built from scratch: every chunk's text, exactly,
    and the top 5 of each check query (hits whose scores are within ``NEAR_TIE`` may swap)."""

    chunks: tuple
    tops: tuple

    def same(self, other: Fingerprint) -> bool:
        return self.chunks == other.chunks and all(_same_top(a, b) for a, b in zip(self.tops, other.tops))


def _same_top(a: tuple, b: tuple) -> bool:
    if len(a) != len(b) or any(abs(x[1] - y[1]) > NEAR_TIE for x, y in zip(a, b)):
        return False
    cut = (a[-1][1] if a else 0) + NEAR_TIE   # above the last place's score, the same hits
    return {x[0] for x in a if x[1] > cut} == {y[0] for y in b if y[1] > cut}


def fingerprint(idx: Path) -> Fingerprint:
    from searcher import Searcher

    with contextlib.closing(sqlite3.connect(f"file:{idx / 'searcher.db'}?mode=ro", uri=True, timeout=30)) as c:
        chunks = tuple(c.execute("SELECT d.doc_id, d.sha256, c.ord, c.text, c.start_char, c.end_char, c.start_line, "
                                 "c.end_line, c.n_tokens, c.page, c.heading FROM chunks c JOIN documents d "
                                 "ON d.id = c.document ORDER BY d.doc_id, c.ord"))
    with Searcher(idx) as s:
        tops = tuple(tuple(((h.id, h.chunk), h.score) for h in s.search(q, k=5)) for q in CHECK_QUERIES)
    return Fingerprint(chunks, tops)


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("write.lock"))
    return dst


def live_copy(src: Path, dst: Path) -> int:
    """Copy a folder that a process is writing, as a backup tool does: file by file, skipping
    files that vanish before their turn. Returns how many were copied."""
    dst.mkdir()
    n = 0
    for p in sorted(src.iterdir()):
        with contextlib.suppress(FileNotFoundError):
            if p.is_file() and p.name != "write.lock":
                shutil.copy2(p, dst / p.name)
                n += 1
    return n


def temp_files(idx: Path) -> list[str]:
    return sorted(p.name for p in idx.glob(".*.tmp"))


# ---- named events of a run, seen from outside ------------------------------------------------------
def generation(idx: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{idx / 'searcher.db'}?mode=ro", uri=True, timeout=5)) as c:
            return int(c.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
    except (sqlite3.Error, TypeError):
        return -1


def documents_like(idx: Path, pattern: str) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{idx / 'searcher.db'}?mode=ro", uri=True, timeout=5)) as c:
            return int(c.execute("SELECT count(*) FROM documents WHERE doc_id LIKE ?", (pattern,)).fetchone()[0])
    except sqlite3.Error:
        return -1


def vector_files(idx: Path) -> set[str]:
    return {p.name for p in idx.glob("vectors.g*.faiss")}


def event_probe(event: str, idx: Path, removed: list[str]) -> Callable[[], bool]:
    """A function that turns true when ``event`` has happened in the run writing ``idx``."""
    gen0, vec0 = generation(idx), vector_files(idx)
    if event == "commit":
        return lambda: generation(idx) > max(gen0, 0)
    if event == "removals":
        return lambda: all(documents_like(idx, f"%{name}") == 0 for name in removed)
    if event == "vectors":
        return lambda: bool(vector_files(idx) - vec0)
    if event == "export":   # made in the user cache (one per model and machine): the campaign's own
        exports = Path(ENV["SEARCHER_CACHE"]) / "onnx"
        return lambda: any(exports.glob(".*.tmp")) or any(exports.glob("*/export.json"))
    raise ValueError(event)


def killed_run(folder: Path, idx: Path, sig: signal.Signals, *, at: float | None = None,
               probe: Callable[[], bool] | None = None, timeout: float = 600) -> str:
    """Start an index run and send ``sig`` ``at`` seconds in, or when ``probe`` turns true."""
    p = subprocess.Popen(index_cmd(folder, idx), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    t = time.monotonic()
    try:
        while p.poll() is None and time.monotonic() - t < timeout:
            if (at is not None and time.monotonic() - t >= at) or (probe is not None and probe()):
                p.send_signal(sig)
                break
            time.sleep(0.01)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    when = f"{time.monotonic() - t:.1f}s"
    if p.returncode == 0:
        return f"finished before the {sig.name} ({when})"
    if sig != signal.SIGKILL:
        need("Traceback" not in err and err.strip().count("\n") == 0, f"{sig.name}: not one line: {err[-300:]}")
    return f"{sig.name} at {when}, exit {p.returncode}"


# ---- storage ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real small file system (root only): writes past ``size`` fail with ENOSPC."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                       text=True, check=False)
    if r.returncode:
        raise Skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def used_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---- 1. process faults -----------------------------------------------------------------------------
@dataclass
class World:
    """The folder and indexes every section starts from."""

    folder: Path        # the documents, edited after ``base_index`` was made (what every later run indexes)
    base_index: Path    # an index of the folder before the edit, never written to after the setup
    current_index: Path   # an index of the folder after the edit (by an incremental run), never written to after
    reference: Fingerprint   # a fresh index of the edited folder (small size: an uninterrupted incremental run)
    removed: list[str]
    first_seconds: float
    incr_seconds: float
    n: int


def setup(c: Campaign) -> World:
    w = c.work
    folder = w / "docs"
    make_corpus(folder, c.size["base"])
    r = run(index_cmd(folder, w / "base-index"))
    need(r.rc == 0, f"first run failed: {r.err[-300:]}")
    removed = change_folder(folder, c.size["added"])
    incr = copy_index(w / "base-index", w / "incr-index")
    t = run(index_cmd(folder, incr))
    need(t.rc == 0, f"incremental run failed: {t.err[-300:]}")
    reference = fingerprint(incr)
    first_seconds = r.seconds
    if c.size["fresh"]:
        fresh = run(index_cmd(folder, w / "fresh-index"))
        need(fresh.rc == 0, f"fresh run failed: {fresh.err[-300:]}")
        reference, first_seconds = fingerprint(w / "fresh-index"), fresh.seconds
        need(fingerprint(incr).same(reference), "an incremental run does not equal a fresh index")
    return World(folder, w / "base-index", incr, reference, removed, first_seconds, t.seconds, c.size["base"])


def after_fault(world: World, idx: Path, incremental: bool) -> str:
    """The checks after a killed run: intact, rerun completes, equals fresh, no temporary files."""
    if incremental:
        intact(idx, world.n)
    elif (idx / "manifest.json").exists() and generation(idx) > 0:
        need(integrity(idx) == "ok", "integrity_check failed")
    r = run(index_cmd(world.folder, idx))
    need(r.rc == 0, f"rerun failed: {r.err.strip()[-300:]}")
    need(not temp_files(idx), f"temporary files left: {temp_files(idx)}")
    need(fingerprint(idx).same(world.reference), "the rerun's index differs from a fresh one")
    return "intact, rerun equals fresh"


def process_faults(c: Campaign, world: World) -> None:
    rng = random.Random(15)
    k = 0

    def one(kind: str, sig: signal.Signals, at: float | None = None, event: str | None = None) -> None:
        nonlocal k
        k += 1
        idx = c.work / f"proc-{k}"
        incremental = kind == "incremental"
        if incremental:
            copy_index(world.base_index, idx)
        label = f"{kind} run, {sig.name} " + (f"at {event}" if event else f"at {at:.1f}s")

        def go() -> str:
            probe = event_probe(event, idx, world.removed) if event else None
            how = killed_run(world.folder, idx, sig, at=at, probe=probe)
            return f"{how}; {after_fault(world, idx, incremental)}"
        c.case("process", label, go, timeout=900)
        shutil.rmtree(idx, ignore_errors=True)

    for kind, spread, total, events in (("first", c.size["first_spread"], world.first_seconds, c.size["first_events"]),
                                        ("incremental", c.size["incr_spread"], world.incr_seconds,
                                         c.size["events"])):
        for i in range(spread):
            one(kind, getattr(signal, c.size["spread_signals"][i % len(c.size["spread_signals"])]),
                at=total * (i + rng.random()) / spread)
        for event in events:
            if kind == "first" and event == "removals":
                continue
            for name in c.size["signals"] if kind == "incremental" else ("SIGKILL",):
                one(kind, getattr(signal, name), event=event)

    def backup() -> str:
        """A copy of the index folder taken while a run writes it (what a backup tool or a snapshot
        of a dying machine sees), then the writer killed: the copy must open, or say it cannot."""
        from searcher import Searcher
        from searcher.errors import SearcherError

        idx, copy = copy_index(world.base_index, c.work / "bk-idx"), c.work / "bk-copy"
        p = subprocess.Popen(index_cmd(world.folder, idx), env=ENV, stderr=subprocess.DEVNULL)
        probe = event_probe("commit", idx, world.removed)
        while not probe() and p.poll() is None:
            time.sleep(0.01)
        copied = live_copy(idx, copy)
        p.kill()
        p.wait()
        try:
            with Searcher(copy) as s:
                s.search(CHECK_QUERIES[0], k=5)
            need(integrity(copy) == "ok", "the copy opens but fails integrity_check")
            state = f"{copied} files copied; the copy opens and searches"
        except SearcherError as exc:
            need("\n" not in str(exc), "a multi-line error")
            return f"{copied} files copied; the copy says: {exc}"
        r = run(index_cmd(world.folder, copy))
        need(r.rc == 0, f"rerun on the copy failed: {r.err.strip()[-300:]}")
        need(fingerprint(copy).same(world.reference), "the copy's rerun differs from a fresh index")
        return state + "; its rerun equals fresh"
    c.case("process", "copy of the folder taken mid-run, then SIGKILL", backup, timeout=900)


# ---- 2. storage faults -----------------------------------------------------------------------------
def search_outcome(idx: Path, expect: tuple | None = None) -> str:
    """A CLI search: right answers, or one line that says what to do. Never a traceback."""
    r = run(searcher_cmd("search", CHECK_QUERIES[0], "--index", str(idx), "--json", "-k", "5"), timeout=300)
    if r.rc == 0:
        got = tuple((json.loads(x)["id"], json.loads(x)["chunk"]) for x in r.out.splitlines())
        need(expect is None or got == expect, "search answers differ from the undamaged index's")
        return "search right"
    need(one_line_error(r), f"search: not a one-line error: {r.err.strip()[-400:]}")
    return f"search: {r.err.strip()}"


def index_outcome(world: World, idx: Path) -> str:
    r = run(index_cmd(world.folder, idx), timeout=600)
    if r.rc == 0:
        after = search_outcome(idx)
        if after != "search right":
            return f"the index run completes; then {after}"
        need(fingerprint(idx).same(world.reference), "after the run the index differs from a fresh one")
        return "an index run repairs it"
    need(one_line_error(r), f"index: not a one-line error: {r.err.strip()[-400:]}")
    return f"index: {r.err.strip()}"


def storage_faults(c: Campaign, world: World) -> None:
    expect = tuple(hit for hit, _ in fingerprint(world.current_index).tops[0])
    k = 0

    def damaged(name: str, damage: Callable[[Path], None]) -> None:
        nonlocal k
        if not c.wants(name):
            return
        k += 1
        idx = copy_index(world.current_index, c.work / f"st-{k}")

        def go() -> str:
            damage(idx)
            return f"{search_outcome(idx, expect)}; {index_outcome(world, idx)}"
        c.case("storage", name, go, timeout=900)
        shutil.rmtree(idx, ignore_errors=True)

    def newest(idx: Path, suffix: str = ".faiss") -> Path:
        return max(idx.glob(f"vectors.g*{suffix}"))

    damaged("vector file truncated to half", lambda i: os.truncate(newest(i), newest(i).stat().st_size // 2))
    damaged("vector file deleted", lambda i: newest(i).unlink())
    damaged("vector file overwritten with garbage", lambda i: newest(i).write_bytes(os.urandom(newest(i).stat().st_size)))
    damaged("vector metadata (.json) garbage", lambda i: newest(i, ".json").write_bytes(b"{\x00garbage"))

    def flip(path: Path, count: int = 8) -> None:
        data = bytearray(path.read_bytes())
        rng = random.Random(3)
        for _ in range(count):
            data[rng.randrange(len(data))] ^= 0x5A
        path.write_bytes(bytes(data))
    def flip_at(path: Path, where: range) -> None:
        data = bytearray(path.read_bytes())
        for j in where:
            data[j] ^= 0x5A
        path.write_bytes(bytes(data))
    damaged("manifest.json with flipped bytes", lambda i: flip(i / "manifest.json"))
    damaged("searcher.db header damaged", lambda i: flip_at(i / "searcher.db", range(16, 100)))
    damaged("searcher.db content bytes flipped (bit rot)", lambda i: flip(i / "searcher.db", 64))
    def export_file(name: str) -> Path:   # the index's model export, shared in the campaign's user cache
        return next((Path(ENV["SEARCHER_CACHE"]) / "onnx").glob(f"*/{name}"))
    damaged("encoder.onnx half-written", lambda i: os.truncate(export_file("encoder.onnx"),
                                                               export_file("encoder.onnx").stat().st_size // 2))
    damaged("encoder.tokenizer.json garbage", lambda i: export_file("encoder.tokenizer.json").write_text("{not json"))

    def wal_deleted() -> str:
        """Commits still in the WAL of a killed writer, then -wal and -shm deleted: the database
        goes back to its last checkpoint; the vector file may be ahead of it."""
        idx = copy_index(world.base_index, c.work / "wal-idx")
        killed_run(world.folder, idx, signal.SIGKILL, probe=event_probe("commit", idx, world.removed))
        gone = [p.name for p in idx.glob("searcher.db-*")]
        for p in idx.glob("searcher.db-*"):
            p.unlink()
        need(integrity(idx) == "ok", "integrity_check failed")
        out = search_outcome(idx)
        r = run(index_cmd(world.folder, idx))
        need(r.rc == 0, f"rerun failed: {r.err.strip()[-300:]}")
        need(fingerprint(idx).same(world.reference), "the rerun differs from a fresh index")
        return f"deleted {gone}; {out}; rerun equals fresh"
    c.case("storage", "-wal deleted after a killed run", wal_deleted, timeout=900)

    def disk_fills() -> str:
        idx_size = used_bytes(world.base_index)
        with tmpfs(c.work / "fill", f"{(idx_size + 600_000) // 4096 * 4096}") as mnt:
            idx = copy_index(world.base_index, mnt / "idx")
            r = run(index_cmd(world.folder, idx))
            need(r.rc != 0, "the run did not fill the disk (make --added larger)")
            need(one_line_error(r), f"not a one-line error: {r.err.strip()[-400:]}")
            intact(idx, world.n)
            remount(mnt, f"size={idx_size * 2 + 50_000_000}")
            again = run(index_cmd(world.folder, idx))
            need(again.rc == 0, f"rerun on a freed disk failed: {again.err.strip()[-300:]}")
            need(not temp_files(idx), f"temporary files left: {temp_files(idx)}")
            need(fingerprint(idx).same(world.reference), "the rerun differs from a fresh index")
        return f"{r.err.strip()}; previous index intact; rerun on a freed disk equals fresh"
    c.case("storage", "disk fills during an incremental run", disk_fills, timeout=900)

    def export_disk_full() -> str:
        with tmpfs(c.work / "fill-export", "8m") as mnt:
            env = {**ENV, "SEARCHER_CACHE": str(mnt / "cache")}    # the user cache fills, not the index
            r = run(index_cmd(world.folder, mnt / "idx"), env=env)
            need(r.rc != 0 and one_line_error(r), f"not a one-line error: {r.err.strip()[-400:]}")
            manifest = json.loads((mnt / "idx" / "manifest.json").read_text())
            need("query_encoder" not in manifest, f"recorded: {manifest.get('query_encoder')}")
            need(not temp_files(mnt / "idx"), f"temporary files left: {temp_files(mnt / 'idx')}")
            remount(mnt, "size=400m")
            again = run(index_cmd(world.folder, mnt / "idx"), env=env)
            need(again.rc == 0, f"rerun on a freed disk failed: {again.err.strip()[-300:]}")
            kind = json.loads((mnt / "idx" / "manifest.json").read_text())["query_encoder"]["kind"]
            need(kind == "onnx", f"the rerun recorded {kind}")
        return f"{r.err.strip()[:120]}…; not recorded; the next run exported"
    if c.size["first_spread"]:
        c.case("storage", "disk full during the ONNX export (first run)", export_disk_full, timeout=900)

    def read_only() -> str:
        with tmpfs(c.work / "ro", "400m") as mnt:
            idx = copy_index(world.base_index, mnt / "idx")
            remount(mnt, "ro")
            out = search_outcome(idx, expect)
            r = run(index_cmd(world.folder, idx))
            need(r.rc != 0 and one_line_error(r), f"index: not a one-line error: {r.err.strip()[-400:]}")
            remount(mnt, "rw")
            intact(idx, world.n)
        return f"{out}; index: {r.err.strip()}"
    c.case("storage", "index folder on a read-only file system", read_only, timeout=600)


# ---- 3. hostile inputs -----------------------------------------------------------------------------
def _sparse(p: Path, size: int) -> None:
    with open(p, "wb") as f:
        f.truncate(size)


def _gzip_bomb(p: Path, gib: float = 1.0) -> None:
    with gzip.open(p, "wb", compresslevel=9) as f:
        block = b"\0" * 2**20
        for _ in range(int(gib * 1024)):
            f.write(block)


def _zip_bomb_docx(p: Path) -> None:
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"/>')
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/'
                    b'2006/main"><w:body><w:p><w:r><w:t>')
            for _ in range(1024):
                f.write(b"a" * 2**20)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")


def _pdf_pages(p: Path, pages: int) -> None:
    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(200, 200)
    with open(p, "wb") as f:
        w.write(f)


def _nested_html(p: Path, mb: int) -> None:
    depth = mb * 2**20 // 11
    p.write_bytes(b"<html><body>" + b"<div>" * depth + b"deep text" + b"</div>" * depth + b"</body></html>")


def _notebook(p: Path, mb: int) -> None:
    p.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# A notebook with a huge output"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": ["print('x' * 10**8)"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["x" * (mb * 2**20)]}]}]}))


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))   # left bound: the file stays a socket


def _nested_dirs(d: Path, depth: int) -> None:
    p = d
    for i in range(depth):
        p = p / f"d{i}"
    p.mkdir(parents=True)
    (p / "deep.txt").write_text("A note kept two hundred folders deep, about the deepest caves.\n")


def _tiny_files(d: Path, n: int) -> None:
    for i in range(n):
        (d / f"t{i // 1000:02d}").mkdir(exist_ok=True)
        (d / f"t{i // 1000:02d}" / f"{i:05d}.txt").write_text(f"tiny note {i}\n")


def _docx_garbage(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("word/document.xml", os.urandom(5000))
        z.writestr("garbage.bin", os.urandom(5000))


def _truncated_pdf(p: Path) -> None:
    import io as _io

    from reportlab.pdfgen import canvas

    buf = _io.BytesIO()
    cv = canvas.Canvas(buf)
    for i in range(5):
        cv.drawString(72, 700, f"Page {i} about glaciers.")
        cv.showPage()
    cv.save()
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


HOSTILE: list[tuple[str, Callable[[Path], None]]] = [   # (case, make it in a fresh folder)
    ("binary named .txt", lambda d: (d / "binary.txt").write_bytes(os.urandom(65536))),
    ("zero bytes", lambda d: (d / "empty.txt").write_bytes(b"")),
    ("NUL in the middle", lambda d: (d / "nul.txt").write_bytes(b"Readable start about kelp forests.\n" * 50 + b"\0"
                                                                  + b"Readable end about kelp.\n" * 50)),
    ("invalid UTF-8", lambda d: (d / "bad.txt").write_bytes(b"Caf\xe9 notes \xff\xfe about espresso \xc3\x28.\n" * 200)),
    ("UTF-16 without BOM", lambda d: (d / "u16.txt").write_bytes("Notes about lighthouses and fog horns.\n"
                                                                  .encode("utf-16-le") * 100)),
    ("a file name with newlines", lambda d: (d / "line\nbreak\nname.txt").write_text("A note about marmots.\n")),
    ("symlink loop", lambda d: ((d / "a").symlink_to(d / "b"), (d / "b").symlink_to(d / "a"))),
    ("symlink to /dev/zero named x.txt", lambda d: (d / "x.txt").symlink_to("/dev/zero")),
    ("FIFO named pipe.txt", lambda d: os.mkfifo(d / "pipe.txt")),
    ("a socket named sock.txt", lambda d: _socket(d / "sock.txt")),
    ("a 5 MB single line", lambda d: (d / "line.txt").write_text(("word " * (2**20)) + "\n")),
    ("a 200 MB sparse file", lambda d: _sparse(d / "sparse.txt", 200 * 2**20)),
    ("200 nested folders", lambda d: _nested_dirs(d, 200)),
    (".docx that is a zip of garbage", lambda d: _docx_garbage(d / "garbage.docx")),
    ("zip bomb .docx (1 GiB inside)", lambda d: _zip_bomb_docx(d / "bomb.docx")),
    ("gzip bomb .txt.gz (1 GiB inside)", lambda d: _gzip_bomb(d / "bomb.txt.gz")),
    ("PDF with 0 pages", lambda d: _pdf_pages(d / "empty.pdf", 0)),
    ("PDF with 10,000 pages", lambda d: _pdf_pages(d / "many.pdf", 10_000)),
    ("truncated PDF", lambda d: _truncated_pdf(d / "half.pdf")),
    ("50 MB of nested HTML divs", lambda d: _nested_html(d / "deep.html", 50)),
    ("markdown with 100,000 headings", lambda d: (d / "heads.md").write_text(
        "".join(f"# Heading {i}\n\nline {i}\n\n" for i in range(100_000)))),
    ("notebook with a 100 MB output cell", lambda d: _notebook(d / "big.ipynb", 100)),
    ("a folder named notes.md", lambda d: (d / "notes.md").mkdir()),
    ("a 9 MB file of one word repeated", lambda d: (d / "same.txt").write_text("lorem " * (9 * 2**20 // 6))),
]
RAISED = ["--max-file-size", "300MB"]   # the big cases again, with the size limit out of the way
HOSTILE_RAISED = {"a 5 MB single line", "50 MB of nested HTML divs", "notebook with a 100 MB output cell",
                  "markdown with 100,000 headings", "gzip bomb .txt.gz (1 GiB inside)", "zip bomb .docx (1 GiB inside)"}


def hostile_inputs(c: Campaign, world: World) -> None:
    folder = shutil.copytree(world.folder, c.work / "hostile")
    idx = copy_index(world.base_index, c.work / "hostile-index")
    need(run(index_cmd(folder, idx)).rc == 0, "indexing the hostile folder's copy of the base failed")
    before = fingerprint(idx)
    cases = [(name, make, []) for name, make in HOSTILE]
    cases += [(f"{name}, {' '.join(RAISED)}", make, RAISED) for name, make in HOSTILE
              if name in HOSTILE_RAISED and c.size["raised"]]
    cases.append((f"{c.size['tiny_files']:,} tiny files", lambda d: _tiny_files(d, c.size["tiny_files"]), []))
    if os.geteuid() == 0 and shutil.which("setpriv"):
        cases.append(("unreadable file and folder (no root powers)", None, []))
    cases += [("a file deleted while the run reads", "delete", []), ("a file truncated while the run reads", "truncate", [])]
    for i, (name, make, extra) in enumerate(cases):
        if not c.wants(name):
            continue
        case_dir = folder / f"case{i:02d}"
        case_dir.mkdir()

        def go(make=make, extra=extra, case_dir=case_dir, i=i) -> str:
            args = index_cmd(folder, idx, "--json", *extra)
            if make is None:      # modes that a non-root process must obey
                (case_dir / "secret.txt").write_text("A secret note about otters.\n")
                (case_dir / "locked").mkdir()
                (case_dir / "locked" / "inside.txt").write_text("Inside a locked folder.\n")
                (case_dir / "secret.txt").chmod(0)
                (case_dir / "locked").chmod(0)
                args = [shutil.which("setpriv"), "--bounding-set=-dac_override,-dac_read_search", "--", *args]
                r = run(args, timeout=300)
                (case_dir / "locked").chmod(0o755)
            elif isinstance(make, str):
                big = case_dir / "moving.txt"
                big.write_text(("A line about tides and moons. " * 30 + "\n") * 20_000)   # ~18 MB: under a raised limit
                args = index_cmd(folder, idx, "--json", *RAISED)
                done = threading.Event()
                threading.Thread(target=lambda: (done.wait(1.0), big.unlink() if make == "delete"
                                                 else os.truncate(big, 100)), daemon=True).start()
                r = run(args, timeout=300)
                done.set()
            else:
                make(case_dir)
                r = run(args, timeout=240)
            need(not r.timed_out, "hung: killed at the timeout")
            need(r.rc in (0, 3), f"exit {r.rc}: {r.err.strip()[-300:]}")
            need("Traceback" not in r.err, f"traceback: {r.err.strip()[-300:]}")
            lines = [json.loads(x) for x in r.out.splitlines()]
            mine = [x for x in lines[:-1] if f"/case{i:02d}/" in x["path"]]
            intact(idx, world.n)
            reasons = sorted({f"{x['status']}" + (f" ({x['reason']})" if x.get("reason") else "") for x in mine})
            shown = "; ".join(reasons[:3]) + (f"; … {len(reasons) - 3} more kinds" if len(reasons) > 3 else "")
            return f"{shown or 'not listed'} — {r.seconds:.1f}s, peak RSS {r.rss_mb:.0f} MB"
        c.case("hostile", name, go, timeout=360)
        shutil.rmtree(case_dir, ignore_errors=True)
    r = run(index_cmd(folder, idx))
    c.rows.append(Row("hostile", "all cases removed again", r.rc == 0 and fingerprint(idx).same(before),
                      "the index equals the one before the cases" if r.rc == 0 else r.err.strip(), r.seconds))


# ---- 4. concurrency --------------------------------------------------------------------------------
def concurrency(c: Campaign, world: World) -> None:
    from searcher import Searcher

    def two_writers() -> str:
        idx = copy_index(world.base_index, c.work / "cc-1")
        p = subprocess.Popen(index_cmd(world.folder, idx), env=ENV, stderr=subprocess.DEVNULL)
        try:
            lock = idx / "write.lock"
            while not (lock.exists() and f'"pid": {p.pid}' in lock.read_text()):   # the first writer holds the lock
                need(p.poll() is None, "the first writer ended too soon")
                time.sleep(0.01)
            r = run(index_cmd(world.folder, idx), timeout=60)
            need(p.poll() is None, "the first writer ended before the second started: make --added larger")
            need(r.rc == 1 and one_line_error(r) and "another process" in r.err, f"second writer: {r.err[-300:]}")
            lat = []
            with Searcher(idx) as s:
                while p.poll() is None and len(lat) < 2000:
                    t = time.perf_counter()
                    need(bool(s.search(CHECK_QUERIES[len(lat) % 5], k=5)), "a search during the run found nothing")
                    lat.append((time.perf_counter() - t) * 1000)
        finally:
            p.wait()
        need(p.returncode == 0, "the first writer failed")
        return (f"second writer refused in {r.seconds:.1f}s (process start included): {r.err.strip()[:90]}…; "
                f"{len(lat)} searches during the run, all answered, p50 {pct(lat, 50):.0f} ms, p95 {pct(lat, 95):.0f} ms")
    c.case("concurrency", "two writers; searches during a run", two_writers, timeout=900)

    def search_killed() -> str:
        idx = copy_index(world.base_index, c.work / "cc-2")
        before = sorted(p.name for p in idx.iterdir())
        kills = 0
        for delay in (0.3, 0.8, 1.5, 2.5):
            p = subprocess.Popen(searcher_cmd("search", CHECK_QUERIES[1], "--index", str(idx)), env=ENV,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if p.poll() is None:
                kills += 1
            p.kill()
            p.wait()
        after = sorted(p.name for p in idx.iterdir())
        extra = set(after) - set(before) - {"searcher.db-wal", "searcher.db-shm"}
        need(not extra, f"left behind: {sorted(extra)}")
        intact(idx, world.n)
        need(run(index_cmd(world.folder, idx)).rc == 0, "an index run after the killed searches failed")
        return f"{kills} of 4 searches killed mid-way; nothing left behind, index intact and writable"
    c.case("concurrency", "search processes killed mid-query", search_killed, timeout=600)

    if c.size["load_seconds"]:
        def load() -> str:
            r = run([sys.executable, str(REPO / "scripts" / "load_test.py"), "--clients", "32", "--seconds",
                     str(c.size["load_seconds"]), "--stable", "40", "--churn", "8"], timeout=900)
            result = json.loads(r.out[r.out.rindex("\n{") + 1: r.out.rindex("}") + 1])   # its last, indented JSON
            need(r.rc == 0 and result["errors"] == 0 and result["inconsistent"] == 0, f"load test: {r.out[-400:]}")
            return (f"{result['searches']} searches by 32 clients while {result['index_runs']} index runs and "
                    f"{result['api_batches']} API batches wrote: 0 errors, p95 {result['p95_ms']} ms")
        c.case("concurrency", "serve: 32 clients searching while index runs", load, timeout=1200)


# ---- 5. server abuse -------------------------------------------------------------------------------
ANSWERABLE = {"unicode garbage query"}   # valid requests, however strange: any status but a 5xx


def server_abuse(c: Campaign, world: World) -> None:
    import httpx

    idx = copy_index(world.base_index, c.work / "srv-index")
    port, token = free_port(), "campaign-token"
    server = subprocess.Popen(searcher_cmd("serve", "--index", str(idx), "--host", "127.0.0.1", "--port", str(port),
                                           "--token", token, "--log-level", "warning"), env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    http = httpx.Client(base_url=url, timeout=60, headers=auth)
    try:
        wait_for_server(http, server)
        http.post("/search", json={"query": "warm up", "k": 1})

        def rss() -> float:
            return int(Path(f"/proc/{server.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

        def status(method: str, path: str, **kw) -> int:
            return http.request(method, path, **kw).status_code

        rng = random.Random(9)
        junk = "".join(chr(rng.choice([rng.randrange(0x20, 0xD800), rng.randrange(0xE000, 0x2FFFF)]))
                       for _ in range(2000))
        requests = [
            ("malformed JSON", lambda: status("POST", "/search", content=b"{\"query\": ", headers={"content-type": "application/json"})),
            ("a 50 MB body", lambda: status("POST", "/search", content=b"{\"query\": \"" + b"a" * (50 * 2**20) + b"\"}",
                                             headers={"content-type": "application/json"})),
            ("k = 10^9", lambda: status("POST", "/search", json={"query": "logs", "k": 10**9})),
            ("k = -1", lambda: status("POST", "/search", json={"query": "logs", "k": -1})),
            ("k = 2.5", lambda: status("POST", "/search", json={"query": "logs", "k": 2.5})),
            ("unicode garbage query", lambda: status("POST", "/search", json={"query": junk, "k": 3})),
            ("lone surrogates in the body", lambda: status("POST", "/search", content=b'{"query": "\\ud800\\udfff\\ud800"}',
                                                          headers={"content-type": "application/json"})),
            ("no token", lambda: httpx.post(url + "/search", json={"query": "logs"}).status_code),
            ("wrong token", lambda: httpx.post(url + "/search", json={"query": "logs"},
                                               headers={"Authorization": "Bearer nope"}).status_code),
            ("unknown index", lambda: status("POST", "/search", json={"query": "logs", "index": "../../etc"})),
            ("wrong method", lambda: status("DELETE", "/search")),
        ]
        for name, call in requests:
            def go(call=call, name=name) -> str:
                code = call()
                need(code < 500 if name in ANSWERABLE else 400 <= code < 500, f"HTTP {code}")
                need(http.get("/health").status_code == 200, "/health did not answer")
                return f"HTTP {code}; /health answers; server RSS {rss():.0f} MB"
            c.case("server", name, go, timeout=120)

        def idle_and_slow() -> str:
            n = c.size["abuse_conns"]
            held = []
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                held.append(s)
            for s in held[: n // 10]:    # slow-loris: a header line started, never finished
                s.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            t = time.perf_counter()
            need(http.get("/health").status_code == 200, "/health did not answer")
            h = (time.perf_counter() - t) * 1000
            need(http.post("/search", json={"query": "logs", "k": 3}).status_code == 200, "a search failed")
            peak = rss()
            for s in held:
                s.close()
            return f"{n} idle connections ({n // 10} slow-loris): /health in {h:.0f} ms, search 200, RSS {peak:.0f} MB"
        c.case("server", f"{c.size['abuse_conns']:,} idle connections held open, slow-loris", idle_and_slow,
               timeout=300)
        need(server.poll() is None, "the server died")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    c.rows.append(Row("server", "server log", "Traceback" not in err, "no traceback in the server's log"
                      if "Traceback" not in err else err.strip()[-300:], 0.0))


# ---- the table ---------------------------------------------------------------------------------------
SECTIONS = {"process": process_faults, "storage": storage_faults, "hostile": hostile_inputs,
            "concurrency": concurrency, "server": server_abuse}


def table(rows: list[Row]) -> str:
    out = ["| section | case | held | outcome | s |", "|---|---|---|---|---|"]
    for r in rows:
        held = {True: "yes", False: "**NO**", None: "skipped"}[r.ok]
        outcome = r.outcome.replace("|", "\\|").replace("\n", " ")
        out.append(f"| {r.section} | {r.case.replace(chr(10), ' ')} | {held} | {outcome} | {r.seconds:.1f} |")
    return "\n".join(out)


def write_docs(path: Path, rows: list[Row], command: str, seconds: float) -> None:
    text = path.read_text() if path.exists() else ""
    start = text.find("<!-- campaign -->")
    end = text.find("<!-- /campaign -->")
    held = sum(r.ok is True for r in rows)
    block = (f"<!-- campaign -->\n`{command}` on {platform.machine()}, {os.cpu_count()} cores, "
             f"load average {os.getloadavg()[0]:.1f} at the end; {time.strftime('%Y-%m-%d')}, {seconds / 60:.1f} min. "
             f"{held} of {len(rows)} cases held, {sum(r.ok is False for r in rows)} did not, "
             f"{sum(r.ok is None for r in rows)} skipped.\n\n{table(rows)}\n<!-- /campaign -->")
    text = text[:start] + block + text[end + len("<!-- /campaign -->"):] if start >= 0 and end > start \
        else text + "\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small", help="small: the test suite's run; full: docs")
    ap.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="run only these sections")
    ap.add_argument("--case", help="run only the cases whose name holds this text (and the setup)")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one, deleted at the end)")
    ap.add_argument("--write-docs", type=Path, help="write the table between the campaign markers of this file")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="searcher-faults-", dir=args.work))
    ENV["SEARCHER_CACHE"] = str(work / "cache")     # its own user cache: its rows damage the shared export
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    c = Campaign(work, SIZES[args.size], only_case=args.case)
    try:
        box: dict = {}
        def start() -> str:
            w = box["w"] = setup(c)
            return (f"first run {w.first_seconds:.1f}s, incremental {w.incr_seconds:.1f}s; " +
                    ("incremental equals fresh" if c.size["fresh"] else "reference: the uninterrupted incremental run"))
        c.case("setup", "first, fresh and incremental runs", start, timeout=900)
        if "w" in box:
            for name, section in SECTIONS.items():
                if not args.only or name in args.only:
                    section(c, box["w"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(c.rows))
    failed = [r for r in c.rows if r.ok is False]
    print(f"\n{len(c.rows) - len(failed)} of {len(c.rows)} cases held ({sum(r.ok is None for r in c.rows)} skipped)"
          f" in {time.monotonic() - t0:.0f}s")
    if args.write_docs:
        command = "python scripts/fault_campaign.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_docs(args.write_docs, c.rows, command, time.monotonic() - t0)
    return 1 if failed or "w" not in box else 0


if __name__ == "__main__":
    raise SystemExit(main())
