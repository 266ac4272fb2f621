"""Hostile and broken input: every case is reported with its one-line reason, the rest of the folder
is indexed, and nothing that was already in the index is lost."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from searcher import Searcher
from searcher.ingest.walk import Unreadable, WalkOptions, read_bytes
from searcher.records import Filters

from . import makefiles as mk
from .conftest import NOTES, run_cli, write_tree


@pytest.fixture
def indexed(tmp_path: Path):
    """The notes folder, indexed once: what every case must leave intact."""
    notes = write_tree(tmp_path / "notes", NOTES)
    s = Searcher(tmp_path / "idx")
    assert s.index(notes).count("added") == 5
    return s, notes


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def _by_name(report):
    return {Path(f.path).name: f for f in report.files}


def _intact(s: Searcher, notes: Path) -> None:
    """Everything indexed before is still there and found."""
    assert s.search("how do I rotate the logs", k=1)[0].path == str(notes / "ops" / "logging.md")
    indexed = {d["id"] for d in s.files()["indexed"]}
    assert {str(notes / rel) for rel in NOTES} <= indexed


@pytest.mark.parametrize("name,make,reason", [
    ("corrupt.pdf", lambda p: p.write_bytes(b"%PDF-1.4\n1 0 obj garbage\n" * 50), "corrupt PDF"),
    ("truncated.pdf", lambda p: p.write_bytes(mk.pdf_bytes()[:300]), "corrupt PDF"),
    ("locked.pdf", mk.encrypted_pdf, "encrypted PDF: a password is needed to open it"),
    ("scan.pdf", mk.image_only_pdf, "no extractable text: 2 pages without a text layer (scanned or image-only PDF?)"),
    ("binary.txt", lambda p: p.write_bytes(os.urandom(4096) + b"\x00" * 64), "binary file"),
    ("empty.md", lambda p: p.write_bytes(b""), "empty file"),
    ("broken.docx", lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "corrupt DOCX: not a zip archive"),
    ("huge.txt", lambda p: _sparse(p, 2 * 2**30),   # a sparse 2 GB file: skipped without being read
     "too large: 2147483648 bytes > limit 10485760 (see --max-file-size)"),
    ("bomb.txt.gz", lambda p: p.write_bytes(__import__("gzip").compress(b"a" * (11 * 2**20))),
     "too large: more than 10485760 bytes when decompressed"),
])
def test_broken_file_is_skipped_with_its_reason_and_nothing_is_lost(indexed, name, make, reason):
    s, notes = indexed
    make(notes / name)
    (notes / "fine.txt").write_text("A new note about volcanoes erupting in Iceland.\n")
    report = s.index(notes)
    by = _by_name(report)
    assert by[name].status == "skipped" and by[name].failed
    assert by[name].reason.startswith(reason), by[name].reason
    assert by["fine.txt"].status == "added" and report.count("unchanged") == 5
    assert [f.path for f in report.failures] == [str(notes / name)]
    _intact(s, notes)
    # the skip is remembered for `searcher info --files`
    assert {(Path(x["path"]).name, x["reason"]) for x in s.files()["skipped"]} == {(name, by[name].reason)}


def test_a_file_that_turns_corrupt_leaves_the_index_and_says_why(indexed):
    s, notes = indexed
    (notes / "cooking" / "bread.md").write_bytes(b"\x00\x01\x02" * 1000)
    by = _by_name(s.index(notes))
    assert (by["bread.md"].status, by["bread.md"].reason, by["bread.md"].failed) == ("removed", "binary file", True)
    assert all(not h.path.endswith("bread.md") for h in s.search("sourdough", k=10))
    assert s.search("how do I rotate the logs", k=1)[0].path.endswith("logging.md")


def test_a_file_that_vanishes_during_the_run(indexed):
    s, notes = indexed
    (notes / "a_first.txt").write_text("Read first: notes about tides and the moon.\n")
    (notes / "z_vanishing.txt").write_text("This file is deleted before it is read.\n")
    logging_md = notes / "ops" / "logging.md"
    logging_md.write_text(logging_md.read_text() + "\nAn edit that the run never gets to read.\n")

    def delete_after_first_read(done: int, total: int) -> None:
        if done == 1:
            (notes / "z_vanishing.txt").unlink()
            logging_md.unlink()

    by = _by_name(s.index(notes, progress=delete_after_first_read))
    assert by["a_first.txt"].status == "added"
    assert (by["z_vanishing.txt"].status, by["z_vanishing.txt"].reason) == ("skipped", "vanished during the run")
    # a file that was indexed before keeps its previous version until a run finds it really gone
    assert by["logging.md"].reason == "vanished during the run; previous version kept"
    _intact(s, notes)
    assert _by_name(s.index(notes))["logging.md"].status == "removed"


def test_a_file_changed_between_listing_and_reading_is_indexed_as_read(indexed):
    s, notes = indexed
    (notes / "a_first.txt").write_text("Read first.\n")
    late = notes / "z_late.md"
    late.write_text("Old content about penguins.\n")

    def rewrite(done: int, total: int) -> None:
        if done == 1:
            late.write_text("New content about walruses on the ice, written while the run was going.\n")

    by = _by_name(s.index(notes, progress=rewrite))
    assert by["z_late.md"].status == "added"
    hit = s.search("walrus", k=1)[0]
    assert hit.path == str(late) and "walruses" in hit.text and "penguins" not in hit.text
    assert _by_name(s.index(notes))["z_late.md"].status == "unchanged"   # the stat matches what was read


BUSY_BYTES = 96 * 2**20   # reading takes tens of milliseconds: longer than a busy machine's time slice


@contextmanager
def _being_written(path: Path):
    """Another process changes the file's mtime continuously, as a writer appending to it would."""
    proc = subprocess.Popen([sys.executable, "-c",
                             "import os, sys\nn = 0\nwhile True:\n    n += 1\n    os.utime(sys.argv[1], ns=(n, n))",
                             str(path)])
    try:
        deadline = time.monotonic() + 30
        while os.stat(path).st_mtime_ns > 10**12 and time.monotonic() < deadline:
            time.sleep(0.01)   # wait until the writer runs
        yield path
    finally:
        proc.kill()
        proc.wait()


def test_a_file_being_written_is_never_read_half_old_half_new(tmp_path: Path):
    busy = tmp_path / "busy.md"
    busy.write_bytes(b"\x00" * BUSY_BYTES)
    with _being_written(busy), pytest.raises(Unreadable) as exc:
        read_bytes(busy, max_bytes=2 * BUSY_BYTES)
    assert exc.value.transient and exc.value.reason.startswith("changed while being read")


def test_a_file_being_written_keeps_its_previous_version(indexed):
    s, notes = indexed
    busy = notes / "ops" / "logging.md"
    busy.write_bytes(b"\x00" * BUSY_BYTES)     # if it were read anyway, it would fail fast as binary
    with _being_written(busy):
        by = _by_name(s.index(notes, options=WalkOptions(max_bytes=2 * BUSY_BYTES)))
    assert by["logging.md"].status == "skipped" and by["logging.md"].failed
    assert by["logging.md"].reason.startswith("changed while being read") and "previous version kept" in by["logging.md"].reason
    _intact(s, notes)


def test_symlink_loops_are_reported_and_never_followed(indexed):
    s, notes = indexed
    os.symlink("loop_b.md", notes / "loop_a.md")
    os.symlink("loop_a.md", notes / "loop_b.md")
    os.symlink(".", notes / "self")              # a folder loop: symlinked folders are not followed
    os.symlink(notes, notes / "cooking" / "up")
    report = s.index(notes)
    by = _by_name(report)
    assert by["loop_a.md"].reason.startswith("symlink loop") and by["loop_b.md"].failed
    assert report.count("unchanged") == 5 and "self" not in by and "up" not in by
    _intact(s, notes)


def test_a_file_name_that_is_not_utf8(indexed):
    s, notes = indexed
    raw = os.fsencode(notes) + b"/caf\xe9 \xff menu.txt"
    with open(raw, "wb") as f:
        f.write("The caf\u00e9 sells espresso and croissants every morning.\n".encode())
    by = _by_name(s.index(notes))
    name = os.fsdecode(b"caf\xe9 \xff menu.txt")
    assert by[name].status == "added"
    hit = s.search("espresso and croissants", k=1)[0]
    assert os.fsencode(hit.path) == raw and hit.id == hit.path        # the exact bytes round-trip
    with open(hit.path, "rb") as f:
        assert b"espresso" in f.read()
    assert _by_name(s.index(notes))[name].status == "unchanged"
    r = run_cli("search", "espresso and croissants", "--index", str(s.path), "-k", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert os.fsencode(json.loads(r.stdout)["path"]) == raw
    r = run_cli("search", "espresso and croissants", "--index", str(s.path), "-k", "1")
    assert r.returncode == 0 and "caf\\xe9 \\xff menu.txt:1" in r.stdout
    for pattern in (name, f"caf{name[3]}*", "*menu.txt"):               # path filters see the same name
        assert [h.path for h in s.search("espresso", k=3, filters=Filters(path=pattern))] == [hit.path]
    assert hit.path in [h.path for h in s.search("espresso", k=3, filters=Filters(types=("txt",)))]
    r = subprocess.run([sys.executable, "-m", "searcher", "search", "espresso", "--index", str(s.path),
                        "--path", os.fsencode(name), "--json"], capture_output=True)
    assert r.returncode == 0 and os.fsencode(json.loads(r.stdout)["path"]) == raw, r.stderr
    assert s.delete([hit.id]) == 1
    _intact(s, notes)


def test_a_very_long_single_line_and_ten_thousand_tiny_paragraphs(indexed):
    s, notes = indexed
    (notes / "one_line.txt").write_text("lorem " * 300_000)                  # 1.8 MB without a line break
    (notes / "many.md").write_text("\n\n".join("Tiny." for _ in range(10_000)))
    report = s.index(notes)
    by = _by_name(report)
    assert by["one_line.txt"].status == "added" and by["one_line.txt"].chunks > 1000
    assert by["many.md"].status == "added" and by["many.md"].chunks > 10
    _intact(s, notes)


# ---- permissions: a file or folder the indexing user may not read ----------------------------------------
def _without_root_powers(args: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI so that file modes apply: as root, without the capabilities that bypass them."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes cannot be made to apply")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    return subprocess.run([*prefix, sys.executable, "-m", "searcher", *args], capture_output=True, text=True,
                          timeout=300)


def test_unreadable_file_and_folder_keep_their_previous_version(tmp_path: Path):
    notes = write_tree(tmp_path / "notes", NOTES)
    idx = tmp_path / "idx"
    assert _without_root_powers(["index", str(notes), "--index", str(idx), "-q"]).returncode == 0
    logging_md = notes / "ops" / "logging.md"
    logging_md.write_text(logging_md.read_text() + "\nA change that cannot be read.\n")
    (notes / "secret.txt").write_text("A new file that cannot be read.\n")
    for p in (logging_md, notes / "secret.txt", notes / "garden"):
        p.chmod(0)
    try:
        r = _without_root_powers(["index", str(notes), "--index", str(idx), "--json"])
    finally:
        for p in (logging_md, notes / "secret.txt", notes / "garden"):
            p.chmod(0o755)
    assert r.returncode == 3, r.stderr
    files = {Path(x["path"]).name: x for x in map(json.loads, r.stdout.splitlines()[:-1])}
    assert files["logging.md"]["reason"] == "unreadable: Permission denied; previous version kept"
    assert files["secret.txt"]["reason"] == "unreadable: Permission denied" and files["secret.txt"]["failed"]
    assert files["garden"]["reason"] == "unreadable folder: Permission denied; previous version kept"
    s = Searcher(idx)
    assert s.search("how do I rotate the logs", k=1)[0].path == str(logging_md)
    assert "cannot be read" not in s.search("how do I rotate the logs", k=1)[0].text
    assert s.search("watering tomato plants", k=1)[0].path.endswith("tomatoes.rst")
    assert s.info()["files"] == 5
