"""Find the files of a folder that should be indexed, and read them as text.

Walking only stats files, so an unchanged folder is checked without reading a byte of it;
``read_document`` is called for the files whose size or mtime changed.
"""
from __future__ import annotations

import codecs
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from .records import Document

TEXT_EXTENSIONS = frozenset("""
.txt .text .md .markdown .mdx .rst .adoc .asciidoc .org .tex .csv .tsv .log
.py .pyi .ipynb .js .mjs .cjs .jsx .ts .tsx .java .kt .kts .scala .go .rs .c .h .cc .cpp .cxx .hpp .hh
.cs .fs .swift .m .mm .rb .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hs .ml .clj .el .vim
.sh .bash .zsh .fish .ps1 .bat .sql .graphql .proto .toml .yaml .yml .ini .cfg .conf .json .xml
.css .scss .less .vue .svelte .cmake .gradle .dockerfile
""".split())
TEXT_FILENAMES = frozenset({"README", "LICENSE", "COPYING", "NOTICE", "CHANGELOG", "AUTHORS",
                            "Makefile", "Dockerfile", "Justfile", "Rakefile", "Gemfile"})
IGNORE_FILES = (".gitignore", ".searcherignore")
DEFAULT_MAX_BYTES = 10 * 2**20


@dataclass(frozen=True)
class WalkOptions:
    """Which files of a folder are candidates for indexing."""

    extensions: frozenset[str] = TEXT_EXTENSIONS
    max_bytes: int = DEFAULT_MAX_BYTES
    hidden: bool = False             # descend into hidden folders and read hidden files
    ignore_files: bool = True        # honour .gitignore and .searcherignore


@dataclass(frozen=True)
class FileEntry:
    """A candidate file found by the walk; not read yet."""

    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A file the walk or the reader refused, with the reason shown to the user."""

    path: Path
    reason: str
    transient: bool = False          # the file may be fine next time (permissions, vanished)


class Unreadable(Exception):
    """Raised by ``read_document`` with the reason the file cannot be indexed."""

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass
class _IgnoreRules:
    """The ignore files found so far, outermost first; deeper files override outer ones (git's rule)."""

    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = field(default_factory=list)

    def with_folder(self, folder: Path) -> _IgnoreRules:
        lines: list[str] = []
        for name in IGNORE_FILES:
            try:
                lines += (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
        if not lines:
            return self
        return _IgnoreRules(self.specs + [(folder, pathspec.GitIgnoreSpec.from_lines(lines))])

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self.specs:
            rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            result = spec.check_file(rel)
            if result.include is not None:
                verdict = result.include
        return verdict


def walk(root: Path, options: WalkOptions = WalkOptions()) -> Iterator[FileEntry | Skipped]:
    """Yield every candidate file below ``root`` (sorted, deterministic) or the reason it is skipped.

    Ignored and hidden paths are left out silently, as git does; files of a type we do not read
    are reported as skipped so that a user can see why a file is missing.
    """
    yield from _walk(root, _IgnoreRules().with_folder(root) if options.ignore_files else _IgnoreRules(),
                     options)


def _walk(folder: Path, rules: _IgnoreRules, options: WalkOptions) -> Iterator[FileEntry | Skipped]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(folder, f"unreadable folder: {exc.strerror or exc}", transient=True)
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(".") and not options.hidden:
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            if not is_dir and entry.is_symlink() and Path(entry.path).is_dir():
                continue  # symlinked folders are not followed: they can loop or leave the tree
        except OSError:
            continue
        if rules.ignored(path, is_dir):
            continue
        if is_dir:
            sub = rules.with_folder(path) if options.ignore_files else rules
            yield from _walk(path, sub, options)
            continue
        if path.suffix.lower() not in options.extensions and path.name not in TEXT_FILENAMES:
            yield Skipped(path, f"unsupported file type: '{path.suffix or path.name}' (add it with --ext)")
            continue
        try:
            st = entry.stat()  # follows a symlinked file
        except OSError as exc:
            yield Skipped(path, f"unreadable: {exc.strerror or exc}", transient=True)
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if st.st_size > options.max_bytes:
            yield Skipped(path, f"too large: {st.st_size} bytes > limit {options.max_bytes} (see --max-file-size)")
            continue
        yield FileEntry(path, st.st_size, st.st_mtime_ns)


def read_document(entry: FileEntry) -> Document:
    """Read and decode one file; raise ``Unreadable`` with the reason if it is not usable text."""
    try:
        with open(entry.path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        raise Unreadable("vanished during the run", transient=True) from None
    except OSError as exc:
        raise Unreadable(f"unreadable: {exc.strerror or exc}", transient=True) from None
    if not data.strip():
        raise Unreadable("empty file")
    text = decode(data)
    return Document(id=str(entry.path), text=text, path=str(entry.path), size=st.st_size,
                    mtime_ns=st.st_mtime_ns, sha256=hashlib.sha256(data).hexdigest())


_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(data: bytes) -> str:
    """Bytes → text: a BOM, else UTF-8, else the charset that charset-normalizer finds coherent.

    Refuses binary data and bytes no charset explains, rather than indexing mojibake.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec).lstrip("\ufeff")
            except UnicodeDecodeError:
                raise Unreadable(f"undecodable: invalid {codec} after its byte-order mark") from None
    if b"\x00" in data[:8192]:
        raise Unreadable("binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise Unreadable("undecodable: no text encoding fits its bytes")
    text = str(best)
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f")
    if controls > len(text) * 0.01:
        raise Unreadable("binary file")
    return text
