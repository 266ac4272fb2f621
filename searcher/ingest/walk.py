"""Find the files of a folder that should be indexed, and read them as text.

Walking only stats files, so an unchanged folder is checked without reading a byte of it;
``read_document`` is called for the files whose size or mtime changed.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pathspec

from ..records import Document
from .readers import SUFFIXES, Unreadable, binary_suffix, decode, extract, kind_of
from .readers.base import utf16_codec
from .readers.image import Picture, is_image_name, read_picture

__all__ = [
    "IGNORE_FILES",
    "TEXT_EXTENSIONS",
    "FileEntry",
    "PathRules",
    "Skipped",
    "Unreadable",
    "WalkOptions",
    "decode",
    "read_bytes",
    "read_document",
    "read_image",
    "walk",
    "walk_paths",
]
READ_ATTEMPTS = 3

# Suffixes read by default (the readers' own); ``--ext`` adds suffixes and names read as plain text.
TEXT_EXTENSIONS = frozenset(SUFFIXES)
SNIFF_BYTES = 8192        # what is looked at to tell text from binary in a file whose name gives no type
IGNORE_FILES = (".gitignore", ".searcherignore")
DEFAULT_MAX_BYTES = 10 * 2**20


@dataclass(frozen=True)
class WalkOptions:
    """Which files of a folder are candidates for indexing."""

    extensions: frozenset[str] = TEXT_EXTENSIONS
    names: frozenset[str] = frozenset()   # file-name globs read as plain text (--ext NAME)
    max_bytes: int = DEFAULT_MAX_BYTES
    hidden: bool = False             # descend into hidden folders and read hidden files
    ignore_files: bool = True        # honour .gitignore and .searcherignore
    images: bool = False             # read images (kind "image"): the index has an image model

    def reading(self, patterns: Iterable[str]) -> WalkOptions:
        """These options, also reading as plain text what ``--ext`` names: ``.log`` (and ``log``)
        is a suffix; a value without a leading dot is also a file name or glob (``RBASH``,
        ``notes-*``), matched without case."""
        patterns = [p.strip().lower() for p in patterns if p.strip()]
        suffixes = {p if p.startswith(".") else f".{p}" for p in patterns if "*" not in p and "?" not in p}
        names = {p for p in patterns if not p.startswith(".")}
        return replace(self, extensions=self.extensions | suffixes, names=self.names | names)


@dataclass(frozen=True)
class FileEntry:
    """A candidate file found by the walk; not read yet."""

    path: Path
    size: int
    mtime_ns: int
    kind: str = "text"               # the reader for its type (see searcher.readers)
    sniffed: bool = False            # its name gives no type: read as plain text if its content is text


@dataclass(frozen=True)
class Skipped:
    """A file the walk refused, with the reason shown to the user."""

    path: Path
    reason: str
    transient: bool = False          # the file may be fine next time (permissions, vanished)
    kind: str | None = None          # its reader, or None for a type searcher does not read
    failed: bool = False             # a file we would read, but cannot: counts for the exit status


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
    are reported as skipped so that a user can see why a file is missing. Symlinked folders are
    not followed (they can loop or leave the tree); symlinked files are. ``root`` may be a file:
    it is checked like a file found in a folder, and read as plain text if its type is unknown.
    """
    if root.is_file():
        kind = _kind(root, options)
        yield from _check_file(root, kind or "text", options, sniffed=kind is None)
        return
    yield from _walk(root, _IgnoreRules().with_folder(root) if options.ignore_files else _IgnoreRules(),
                     options)


def _walk(folder: Path, rules: _IgnoreRules, options: WalkOptions) -> Iterator[FileEntry | Skipped]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(folder, f"unreadable folder: {exc.strerror or exc}", transient=True, kind="folder",
                      failed=True)
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_link = entry.is_symlink()
        except OSError:
            continue
        if not _passed_over(path, is_dir, rules, options):
            yield from _visit(path, is_dir, is_link, rules, options)


def _passed_over(path: Path, is_dir: bool, rules: _IgnoreRules, options: WalkOptions) -> bool:
    """The walk leaves hidden and ignored paths out in silence, as git does."""
    return path.name.startswith(".") and not options.hidden or rules.ignored(path, is_dir)


def _visit(path: Path, is_dir: bool, is_link: bool, rules: _IgnoreRules,
           options: WalkOptions) -> Iterator[FileEntry | Skipped]:
    """One path the walk does not pass over (not hidden, not ignored): a folder is walked, a file checked."""
    kind = _kind(path, options)
    if is_link:
        try:
            target = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                yield Skipped(path, "symlink loop: the link points back to itself", kind=kind or "other",
                              failed=True)
            elif kind is not None:
                yield Skipped(path, f"broken symlink: {exc.strerror or exc}", kind=kind, failed=True)
            return
        if stat.S_ISDIR(target.st_mode):
            return  # symlinked folders are not followed: they can loop or leave the tree
    if is_dir:
        yield from _walk(path, rules.with_folder(path) if options.ignore_files else rules, options)
        return
    if kind is None and (suffix := binary_suffix(path.name)):
        yield Skipped(path, f"binary file type: '{suffix}' (if it holds text, add it with --ext {suffix})")
        return
    yield from _check_file(path, kind or "text", options, sniffed=kind is None)


def _kind(path: Path, options: WalkOptions) -> str | None:
    """The reader for a file: its text reader, else ``image`` when images are read, else None."""
    kind = kind_of(path.name, options.extensions, options.names)
    return "image" if kind is None and options.images and is_image_name(path.name) else kind


class PathRules:
    """The walk's rules by name (hidden files, ignore files) for single paths below ``root``, so that
    a watcher can tell which changed paths a walk would look at without walking. Cached per folder."""

    def __init__(self, root: Path, options: WalkOptions = WalkOptions()):
        self.root, self.options = root, options
        base = _IgnoreRules().with_folder(root) if options.ignore_files else _IgnoreRules()
        self._folders: dict[Path, _IgnoreRules | None] = {root: base}

    def rules(self, folder: Path) -> _IgnoreRules | None:
        """The ignore rules in force inside ``folder`` (below root), or None if the walk never enters it."""
        if folder not in self._folders:
            parent = self.rules(folder.parent)
            if parent is None or _passed_over(folder, True, parent, self.options):
                self._folders[folder] = None
            else:
                self._folders[folder] = parent.with_folder(folder) if self.options.ignore_files else parent
        return self._folders[folder]

    def excluded(self, path: Path, is_dir: bool | None = None) -> bool:
        """True if the walk of root passes over ``path`` in silence, whether or not it exists now."""
        rules = self.rules(path.parent)
        if rules is None:
            return True
        if is_dir is None:
            is_dir = path.is_dir() and not path.is_symlink()
        return _passed_over(path, is_dir, rules, self.options)


def walk_paths(root: Path, paths: Iterable[Path], options: WalkOptions = WalkOptions()) -> Iterator[FileEntry | Skipped]:
    """What ``walk(root)`` yields for these paths below ``root`` (a folder among them is walked
    whole), without walking the rest: how a watcher re-checks only what changed. Paths that are
    gone, or that the walk passes over, yield nothing."""
    rules = PathRules(root, options)
    walked: list[Path] = []
    for path in sorted(set(paths)):
        if walked and path.is_relative_to(walked[-1]):
            continue            # inside a folder already walked whole
        try:
            st = os.lstat(path)
        except OSError:
            continue
        is_dir, is_link = stat.S_ISDIR(st.st_mode), stat.S_ISLNK(st.st_mode)
        if rules.excluded(path, is_dir):
            continue
        if is_dir:
            walked.append(path)
        yield from _visit(path, is_dir, is_link, rules.rules(path.parent), options)


def _check_file(path: Path, kind: str, options: WalkOptions, sniffed: bool = False) -> Iterator[FileEntry | Skipped]:
    """Stat a candidate (following a symlinked file) and apply the size limit, without reading it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return  # gone between listing and stat: it is simply not there
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else f"unreadable: {exc.strerror or exc}"
        yield Skipped(path, reason, transient=exc.errno != errno.ELOOP, kind=kind, failed=True)
        return
    if not stat.S_ISREG(st.st_mode):
        yield Skipped(path, "not a regular file: a device, pipe or socket", kind=kind)
        return
    if st.st_size > options.max_bytes:
        yield Skipped(path, f"too large: {st.st_size} bytes > limit {options.max_bytes} (see --max-file-size)",
                      kind=kind, failed=True)
        return
    yield FileEntry(path, st.st_size, st.st_mtime_ns, kind, sniffed)


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, os.stat_result]:
    """A file's bytes and the stat they belong to, read so that a file being written is never
    taken half-old, half-new: the size and mtime must be the same before and after the read
    (else it is read again, up to three times, and then reported as changing)."""
    for attempt in range(READ_ATTEMPTS):
        try:
            # O_NONBLOCK: a pipe that replaced the file since the walk must not hang the run
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
                before = os.fstat(f.fileno())
                if not stat.S_ISREG(before.st_mode):
                    raise Unreadable("not a regular file: a device, pipe or socket")
                if before.st_size > max_bytes:
                    raise Unreadable(f"too large: {before.st_size} bytes > limit {max_bytes} (see --max-file-size)")
                data = f.read(max_bytes + 1)
                after = os.fstat(f.fileno())
        except FileNotFoundError:
            raise Unreadable("vanished during the run", transient=True) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Unreadable("symlink loop") from None
            raise Unreadable(f"unreadable: {exc.strerror or exc}", transient=True) from None
        if len(data) > max_bytes:
            raise Unreadable(f"too large: more than {max_bytes} bytes (see --max-file-size)")
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) and len(data) == after.st_size:
            return data, after
        time.sleep(0.05 * (attempt + 1))
    raise Unreadable(f"changed while being read: still being written after {READ_ATTEMPTS} attempts", transient=True)


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip data (all members), refusing more than ``max_bytes`` of output (gzip bombs)."""
    out: list[bytes] = []
    total = 0
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(data, max_bytes + 1 - total)
        except zlib.error as exc:
            raise Unreadable(f"corrupt gzip: {exc}") from None
        total += len(chunk)
        out.append(chunk)
        if total > max_bytes or d.unconsumed_tail:
            raise Unreadable(f"too large: more than {max_bytes} bytes when decompressed (see --max-file-size)")
        if not d.eof:
            raise Unreadable("corrupt gzip: truncated")
        data = d.unused_data.lstrip(b"\x00")
    return b"".join(out)


def _binary(head: bytes) -> bool:
    """Whether bytes are not text, as charset-normalizer judges them (UTF-16 without a byte-order
    mark is text: ``decode`` reads it)."""
    from charset_normalizer import is_binary

    return utf16_codec(head) is None and is_binary(head)


def read_image(entry: FileEntry, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Document, Picture]:
    """Read one image file: a ``Document`` without text (for the documents table and change
    detection) and its ``Picture``; raise ``Unreadable`` with the reason if it is not usable."""
    data, st = read_bytes(entry.path, max_bytes)
    if not data:
        raise Unreadable("empty file")
    picture = read_picture(data)
    return (Document(id=str(entry.path), text="", path=str(entry.path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                     sha256=hashlib.sha256(data).hexdigest(), kind="image"), picture)


def read_document(entry: FileEntry, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one file with the reader of its kind; raise ``Unreadable`` with the reason if it is
    not usable (see searcher.readers)."""
    data, st = read_bytes(entry.path, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    if entry.path.name.lower().endswith(".gz"):
        data = gunzip(data, max_bytes)
    if not data.strip():
        raise Unreadable("empty file")
    if entry.sniffed and _binary(data[:SNIFF_BYTES]):
        raise Unreadable("binary file: its content is not text", failed=False)
    extracted = extract(entry.kind, data)
    return Document(id=str(entry.path), text=extracted.text, path=str(entry.path), size=st.st_size,
                    mtime_ns=st.st_mtime_ns, sha256=digest, kind=entry.kind, blocks=extracted.blocks,
                    page_unit=extracted.page_unit)
