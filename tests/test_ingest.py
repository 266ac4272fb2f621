"""Reading a folder: ignore rules, hidden folders, size limits, binaries and encodings."""
from __future__ import annotations

from pathlib import Path

import pytest

from searcher.ingest.walk import FileEntry, Unreadable, WalkOptions, decode, read_document, walk

from .conftest import write_tree


def _found(root: Path, **opts) -> tuple[set[str], dict[str, str]]:
    entries, skipped = set(), {}
    for e in walk(root, WalkOptions(**opts)):
        rel = e.path.relative_to(root).as_posix()
        if isinstance(e, FileEntry):
            entries.add(rel)
        else:
            skipped[rel] = e.reason
    return entries, skipped


def test_gitignore_searcherignore_and_hidden(tmp_path: Path):
    write_tree(tmp_path, {
        ".gitignore": "*.log\n!keep.log\nbuild/\n",
        "a.md": "a", "debug.log": "x", "keep.log": "k", "build/out.txt": "b",
        "sub/.gitignore": "secret.txt\n", "sub/secret.txt": "s", "sub/ok.txt": "o",
        "sub/.searcherignore": "drafts/\n", "sub/drafts/d.md": "d",
        ".hidden/h.md": "h", ".dotfile.md": "d",
    })
    entries, _ = _found(tmp_path)
    assert entries == {"a.md", "keep.log", "sub/ok.txt"}
    entries, _ = _found(tmp_path, ignore_files=False)
    assert {"debug.log", "build/out.txt", "sub/secret.txt", "sub/drafts/d.md"} <= entries
    assert ".hidden/h.md" not in entries
    entries, _ = _found(tmp_path, hidden=True)
    assert {".hidden/h.md", ".dotfile.md"} <= entries and "debug.log" not in entries


def test_size_limit_and_unsupported_types_are_reported(tmp_path: Path):
    write_tree(tmp_path, {"big.txt": "x" * 5000, "small.txt": "y", "photo.png": b"\x89PNG\r\n"})
    entries, skipped = _found(tmp_path, max_bytes=1000)
    assert entries == {"small.txt"}
    assert skipped["big.txt"].startswith("too large: 5000 bytes")
    assert skipped["photo.png"].startswith("binary file type: '.png'")


def test_symlinked_folder_is_not_followed(tmp_path: Path):
    write_tree(tmp_path, {"real/a.txt": "a"})
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    entries, _ = _found(tmp_path)
    assert entries == {"real/a.txt"}


@pytest.mark.parametrize("data,text", [
    ("naïve café".encode("utf-8"), "naïve café"),
    (b"\xef\xbb\xbfwith bom", "with bom"),
    ("Grüße aus Köln, schöne Straße und Äpfel".encode("latin-1"), "Grüße aus Köln, schöne Straße und Äpfel"),
    ("utf16 text".encode("utf-16"), "utf16 text"),
])
def test_decode(data: bytes, text: str):
    assert decode(data) == text


def test_binary_and_empty_files_are_refused(tmp_path: Path):
    write_tree(tmp_path, {"bin.txt": bytes(range(256)) * 4, "empty.md": b"", "blank.md": b"  \n\n"})
    for name, reason in (("bin.txt", "binary file"), ("empty.md", "empty file"), ("blank.md", "empty file")):
        p = tmp_path / name
        with pytest.raises(Unreadable, match=reason):
            read_document(FileEntry(p, p.stat().st_size, p.stat().st_mtime_ns))


def test_read_document_records_hash_size_and_mtime(tmp_path: Path):
    p = write_tree(tmp_path, {"n.md": "hello\n"}) / "n.md"
    doc = read_document(FileEntry(p, 0, 0))
    assert (doc.text, doc.size, doc.path) == ("hello\n", 6, str(p))
    assert doc.mtime_ns == p.stat().st_mtime_ns
    assert doc.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"


def test_vanished_file_is_transient(tmp_path: Path):
    with pytest.raises(Unreadable) as exc:
        read_document(FileEntry(tmp_path / "gone.txt", 1, 1))
    assert exc.value.transient and "vanished" in exc.value.reason
