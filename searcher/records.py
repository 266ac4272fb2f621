"""Small immutable records passed between pipeline stages (ingest → chunk → embed → store → query)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

BlockKind = Literal["text", "heading", "code", "lines"]


@dataclass(frozen=True)
class Block:
    """A structural span of a document's text, as its reader found it (see searcher/readers).

    ``text`` blocks are prose (cut at paragraphs, then sentences), ``heading`` blocks a heading
    line, ``code`` blocks source code (cut at top-level definitions, then lines), ``lines``
    blocks tables and other line-oriented text (cut at lines). A chunk never crosses from one
    section — a run of blocks with the same ``heading`` and ``page`` — into the next, except
    to join a tiny section to its neighbour (see ``chunking``).
    """

    start: int
    end: int                     # exclusive
    kind: BlockKind = "text"
    heading: tuple[str, ...] = ()    # heading path in force; a heading block's includes itself
    page: int | None = None      # 1-based page (PDF) or cell (notebook)


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
    kind: str = "text"           # the reader that produced it: text, markdown, rst, code, html, pdf, docx, notebook
    blocks: tuple[Block, ...] = field(default=(), hash=False, repr=False)  # empty: plain prose
    page_unit: str | None = None     # what Block.page counts: "page" (PDF), "cell" (notebook)


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
    score: float                 # hybrid: 0..1 (1 = first in every leg); dense: cosine; keyword: BM25
    text: str                    # the chunk's text
    lines: tuple[int, int]       # first and last line of the chunk, 1-based
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    chunk: int = 0               # the chunk's position within its document
    chars: tuple[int, int] = (0, 0)  # character offsets of the chunk within the document
    page: int | None = None
    heading: str | None = None
    snippet: str = ""            # the chunk's sentence that best matches the query, white space folded
    snippet_line: int | None = None  # the line that sentence starts on (the line the CLI shows)
    also: tuple[Place, ...] = ()     # other places holding exactly the same chunk text (identical files)
    scores: dict[str, float | None] = field(default_factory=dict, hash=False)  # raw: fused, dense, keyword

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "path": self.path, "score": self.score, "text": self.text,
            "lines": list(self.lines), "chunk": self.chunk, "chars": list(self.chars),
            "page": self.page, "heading": self.heading, "location": self.location().strip(),
            "snippet": self.snippet, "snippet_line": self.snippet_line, "metadata": self.metadata,
            "also": [p.to_dict() for p in self.also], "scores": self.scores,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hit:
        """The inverse of ``to_dict`` (the HTTP client rebuilds hits with it)."""
        return cls(id=d["id"], path=d["path"], score=d["score"], text=d["text"], lines=tuple(d["lines"]),
                   metadata=d["metadata"], chunk=d["chunk"], chars=tuple(d["chars"]), page=d["page"],
                   heading=d["heading"], snippet=d.get("snippet", ""), snippet_line=d.get("snippet_line"),
                   scores=d.get("scores", {}),
                   also=tuple(Place(p["id"], p["path"], tuple(p["lines"]), p["chunk"], p["page"], p["heading"])
                              for p in d.get("also", ())))

    def location(self, line: int | None = None) -> str:
        """Where in its document the hit is, for people, to print after the path:
        ``:120 (Install > Linux)`` for text and code (the chunk's first line, or ``line``: the CLI
        passes ``snippet_line``), `` p.7 (2 Methods)`` for PDF, `` cell 4`` for notebooks,
        `` (Install > Linux)`` for HTML and Word, whose lines are not the file's."""
        return locate(self.path, line or self.lines[0], self.page, self.heading)


@dataclass(frozen=True)
class Place:
    """Another document (or part of one) holding exactly the text of a hit: an identical file, a
    copied section. Listed in ``Hit.also`` so that copies do not fill the results."""

    id: str
    path: str | None
    lines: tuple[int, int]
    chunk: int = 0
    page: int | None = None
    heading: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "lines": list(self.lines), "chunk": self.chunk, "page": self.page,
                "heading": self.heading, "location": self.location().strip()}

    def location(self) -> str:
        return locate(self.path, self.lines[0], self.page, self.heading)


def locate(path: str | None, line: int, page: int | None, heading: str | None) -> str:
    """``:120 (Install > Linux)``, `` p.7 (2 Methods)``, `` cell 4`` or `` (Install)``: what follows
    the path when a person is shown where a passage is."""
    unit = location_unit(path)
    if unit == "line":
        where = f":{line}"
    elif page is not None:
        where = f" {'p.' if unit == 'page' else unit + ' '}{page}"
    else:
        where = ""
    return where + (f" ({heading})" if heading else "")


# Formats whose document text is extracted (not the file's own text): lines mean nothing to a user.
_EXTRACTED_SUFFIXES = {".html": None, ".htm": None, ".xhtml": None, ".docx": None,
                       ".pdf": "page", ".ipynb": "cell"}


def location_unit(path: str | None) -> str | None:
    """How a hit in the file at ``path`` is located: "line", "page", "cell", or None (heading only)."""
    if path is None:
        return "line"
    name = os.path.basename(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    return _EXTRACTED_SUFFIXES[suffix] if suffix in _EXTRACTED_SUFFIXES else "line"


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
    kind: str | None = None      # the reader for its type (pdf, markdown, ...); None: a type not read
    failed: bool = False         # a file of a type we read that could not be read (corrupt, unreadable...)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "status": self.status}
        if self.kind is not None:
            d["kind"] = self.kind
        if self.chunks is not None:
            d |= {"chunks": self.chunks, "embedded": self.embedded}
        if self.reason:
            d["reason"] = self.reason
        if self.failed:
            d["failed"] = True
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
            if f.status == "skipped" or f.failed:
                key = (f.reason or "unknown").split(":")[0].split(";")[0]
                out[key] = out.get(key, 0) + 1
        return out

    @property
    def failures(self) -> tuple[FileReport, ...]:
        """Files of a type we read that could not be read: what the exit status and --strict see.

        Files of types searcher does not read (images, archives...) are reported as skipped but
        are not failures."""
        return tuple(f for f in self.files if f.failed)

    def by_type(self) -> dict[str, dict[str, int]]:
        """Per reader: files read (added or updated), unchanged, chunks of the files read, failed."""
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            if f.kind is None:
                continue
            row = out.setdefault(f.kind, {"read": 0, "unchanged": 0, "chunks": 0, "failed": 0})
            if f.status in ("added", "updated"):
                row["read"] += 1
                row["chunks"] += f.chunks or 0
            elif f.status == "unchanged":
                row["unchanged"] += 1
            if f.failed:
                row["failed"] += 1
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, Any]:
        return {
            **{s: self.count(s) for s in ("added", "updated", "unchanged", "removed", "skipped")},
            "failed": len(self.failures),
            "skipped_reasons": self.skipped_reasons(),
            "by_type": self.by_type(),
            "chunks_embedded": self.embedded,
            "seconds": round(self.seconds, 3),
        }


# ---- analyze/: similar documents, duplicates, outliers, topics, map -----------------------------
DuplicateTier = Literal["exact", "near", "semantic"]


def _doc_dict(obj: Any) -> dict[str, Any]:
    return {key: (list(v) if isinstance(v, tuple) else v) for key, v in obj.__dict__.items()}


@dataclass(frozen=True)
class Similar:
    """A document like the one asked about; ``score`` fuses meaning and shared rare words
    (higher is more alike, comparable within one answer only), ``cosine`` is the meaning part
    alone (cosine of the two documents' mean chunk vectors, -1..1)."""

    id: str
    path: str | None
    score: float
    cosine: float
    title: str                   # the document's first line, for people

    def to_dict(self) -> dict[str, Any]:
        return _doc_dict(self)


@dataclass(frozen=True)
class DuplicatePair:
    """Two documents (or chunks, ``id#n``) that say the same thing. ``score`` is 1.0 for
    *exact*, the share of the shorter one's word 3-grams found in the other for *near*, and the
    mean of meaning cosine and word Jaccard for *semantic*."""

    a: str
    b: str
    tier: DuplicateTier
    score: float

    def to_dict(self) -> dict[str, Any]:
        return _doc_dict(self)


@dataclass(frozen=True)
class DuplicateGroup:
    """Documents linked by duplicate pairs; ``tier`` is the loosest tier among its pairs."""

    ids: tuple[str, ...]
    paths: tuple[str | None, ...]
    tier: DuplicateTier
    pairs: tuple[DuplicatePair, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "paths": list(self.paths), "tier": self.tier,
                "pairs": [p.to_dict() for p in self.pairs]}


@dataclass(frozen=True)
class Outlier:
    """A document unlike the rest. ``score``: how far the nearest tenth of the collection is from
    it, as a multiple of the collection's median such distance (1 = typical, 2 = twice as far)."""

    id: str
    path: str | None
    score: float
    distance: float              # cosine distance to the nearest tenth of the collection
    nearest: str                 # the most similar other document
    nearest_cosine: float
    title: str

    def to_dict(self) -> dict[str, Any]:
        return _doc_dict(self)


@dataclass(frozen=True)
class Topic:
    """A cluster of documents: its distinctive words (c-TF-IDF), size and most central documents."""

    id: int
    label: str                   # the top words, comma separated
    words: tuple[str, ...]
    size: int
    representatives: tuple[str, ...]   # document ids nearest the topic's centre
    titles: tuple[str, ...]
    members: tuple[str, ...] = ()      # every document id of the topic, nearest the centre first

    def to_dict(self) -> dict[str, Any]:
        return _doc_dict(self)


@dataclass(frozen=True)
class MapReport:
    """What ``map`` wrote: the file, how many documents it shows, the projection and the topics."""

    path: str
    documents: int
    projection: str
    color_by: str
    topics: tuple[Topic, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "documents": self.documents, "projection": self.projection,
                "color_by": self.color_by, "topics": [t.to_dict() for t in self.topics],
                "seconds": round(self.seconds, 3)}


# ---- images (docs/images.md) ---------------------------------------------------------------------
@dataclass(frozen=True)
class ImageHit:
    """A picture found by a sentence (CLIP) or by another picture; ``score`` is the cosine of the
    two vectors in the index's image space (-1..1, higher is more alike)."""

    id: str                      # the document id: the file's path
    path: str
    score: float
    width: int                   # the file's size in pixels
    height: int
    taken: str | None            # EXIF DateTimeOriginal (else DateTime), ISO 8601 without a time zone

    def to_dict(self) -> dict[str, Any]:
        return _doc_dict(self)
