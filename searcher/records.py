"""Small immutable records passed between pipeline stages (ingest → chunk → embed → store → query)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Document:
    """A whole text ready for chunking: a file's decoded contents, or a text given to ``add()``."""

    id: str                      # the file's absolute path, or the id given to add()
    text: str
    path: str | None             # set for files only
    size: int
    mtime_ns: int
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Chunk:
    """A span of a document small enough for the model; positions index into the document text."""

    ord: int                     # position of the chunk within its document, from 0
    text: str
    start_char: int
    end_char: int                # exclusive
    start_line: int              # 1-based, inclusive
    end_line: int
    n_tokens: int                # model tokens, special tokens excluded
    page: int | None = None      # 1-based page, for paged formats (PDF)
    heading: str | None = None   # heading path, e.g. "Install > Linux", for structured formats


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, the document it came from, and where in that document it is."""

    id: str                      # the document id: the id given to add(), or the file's path
    path: str | None
    score: float                 # cosine similarity for dense search, higher is better
    text: str                    # the chunk's text
    lines: tuple[int, int]       # first and last line of the chunk, 1-based
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    chunk: int = 0               # the chunk's position within its document
    chars: tuple[int, int] = (0, 0)  # character offsets of the chunk within the document
    page: int | None = None
    heading: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "path": self.path, "score": self.score, "text": self.text,
            "lines": list(self.lines), "chunk": self.chunk, "chars": list(self.chars),
            "page": self.page, "heading": self.heading, "metadata": self.metadata,
        }


@dataclass(frozen=True)
class Filters:
    """Conditions a hit's document must meet; applied inside the search, before ranking."""

    path: str | None = None            # glob on the file path ('*' crosses folders); relative globs match anywhere
    types: tuple[str, ...] = ()        # file extensions, e.g. ("md", "py")
    modified_after: float | None = None   # POSIX seconds, inclusive
    modified_before: float | None = None  # POSIX seconds, exclusive
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)  # key → value (or list: any of)

    @property
    def empty(self) -> bool:
        return not (self.path or self.types or self.metadata or self.modified_after is not None
                    or self.modified_before is not None)


FileStatus = Literal["added", "updated", "unchanged", "removed", "skipped"]


@dataclass(frozen=True)
class FileReport:
    """What an index run did with one file."""

    path: str
    status: FileStatus
    reason: str | None = None    # why it was skipped (or removed)
    chunks: int | None = None    # chunks the document has now (for added and updated files)
    embedded: int = 0            # chunks whose vectors had to be computed in this run

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "status": self.status}
        if self.chunks is not None:
            d |= {"chunks": self.chunks, "embedded": self.embedded}
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass(frozen=True)
class IndexReport:
    """The outcome of one ``index()`` run: one report per file seen, plus totals."""

    files: tuple[FileReport, ...]
    seconds: float

    def count(self, status: FileStatus) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def embedded(self) -> int:
        return sum(f.embedded for f in self.files)

    def skipped_reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            if f.status == "skipped":
                key = (f.reason or "unknown").split(":")[0]
                out[key] = out.get(key, 0) + 1
        return out

    def summary(self) -> dict[str, Any]:
        return {
            **{s: self.count(s) for s in ("added", "updated", "unchanged", "removed", "skipped")},
            "skipped_reasons": self.skipped_reasons(),
            "chunks_embedded": self.embedded,
            "seconds": round(self.seconds, 3),
        }
