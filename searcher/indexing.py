"""The write path: documents → chunks → vectors → small commits, with the encoder kept busy.

Reading and chunking run in a thread ahead of the encoder (tokenizers and torch release the GIL).
Chunk texts the embedding cache lacks wait in a pool of up to ``WINDOW_CHUNKS``; each step embeds
the ``STEP_CHUNKS`` longest of them, so the encoder sees batches of nearly equal length (little
padding) across the whole run, not just within one file. Each step is one commit: its vectors go
into the embedding cache, and every document whose chunks all have vectors is written. A kill
therefore loses at most the step in flight; the next run finds the rest by hash.
"""
from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .embed.base import TextEncoder
from .errors import SearcherError
from .ingest import skiplog
from .ingest.chunking import ChunkingConfig, chunk_document
from .ingest.walk import FileEntry, Skipped, Unreadable, WalkOptions, read_document, read_image, walk, walk_paths
from .records import Chunk, Document, FileReport, IndexReport
from .store.faiss_index import VectorIndex
from .store.keyword import terms
from .store.sqlite import Store, text_hash

if TYPE_CHECKING:
    from .image_indexing import ImageWriter

# (files read, files to read) — called as the run advances, for progress bars; from the reader thread.
Progress = Callable[[int, int], None]

STEP_CHUNKS = 256         # chunks embedded per step, and so per commit
WINDOW_CHUNKS = 8192      # chunks waiting for the encoder, the sort window (~10 MB of text)
READ_AHEAD_FILES = 256    # files read and chunked ahead of the encoder
IDLE_SECONDS = 1.0        # reader this slow: embed what is waiting rather than let the encoder idle
PROBES = 200              # query-like texts an approximate vector structure is calibrated with
PROBE_WORDS = (4, 16)     # their length in words: a typed question's, not a passage's


def query_like(texts: Sequence[str], seed: int = 0) -> list[str]:
    """A run of ``PROBE_WORDS`` consecutive words from each text, the same ones for the same texts:
    questions in the corpus's own words, which an ANN structure finds as hard as real ones."""
    rng = random.Random(seed)
    out = []
    for text in texts:
        words = text.split()
        n = rng.randint(*PROBE_WORDS)
        start = rng.randint(0, max(0, len(words) - n))
        out.append(" ".join(words[start:start + n]))
    return out


@dataclass
class _Pending:
    """A document waiting for vectors; ``missing`` shrinks as steps embed its texts."""

    doc: Document
    source: str
    chunks: list[Chunk]
    status: str               # "added" | "updated"
    missing: set[bytes]
    embedded: int             # texts this document is the first in the run to need


class Writer:
    """Writes documents into the store and keeps the in-memory vector index in step with commits.

    The single embedding point is ``encoder().encode(texts) -> np.ndarray``: anything with that
    method (and ``token_spans`` for chunking) can stand in for the local model."""

    def __init__(self, store: Store, vectors: VectorIndex, encoder: Callable[[], TextEncoder],
                 chunking: ChunkingConfig, images: ImageWriter | None = None):
        # the encoder is asked for only when there is text to cut or embed: a run that finds
        # nothing changed never loads the model
        self.store, self.vectors, self.encoder, self.chunking = store, vectors, encoder, chunking
        self._pending: list[_Pending] = []
        self._queue: dict[bytes, str] = {}      # text hash → text, not embedded yet
        self._fresh: dict[bytes, np.ndarray] = {}   # embedded this run, for documents not committed yet
        self.reports: list[FileReport] = []
        self.images = images      # the index has an image model: pictures go there (image_indexing.py)

    def calibration_queries(self) -> np.ndarray:
        """Vectors to calibrate the vector structure with: ``query_like`` runs of words from
        ``PROBES`` chunks spread over the store, embedded as queries are."""
        return self.encoder().encode(query_like(self.store.spread_texts(PROBES)))

    @property
    def pending(self) -> int:
        """Documents waiting to be committed."""
        return len(self._pending) + (self.images.pending if self.images else 0)

    def chunk(self, doc: Document) -> list[Chunk]:
        return chunk_document(doc.text, doc.blocks, self.encoder().token_spans, self.chunking,
                              hard_pages=doc.page_unit == "page")

    def put(self, doc: Document, source: str, status: str, chunks: list[Chunk] | None = None) -> None:
        """Queue a new or changed document (``chunks``: already cut, e.g. by the reader thread);
        embeds a step when the sort window is full."""
        chunks = self.chunk(doc) if chunks is None else chunks
        hashes = {text_hash(c.text): c.text for c in chunks}
        unknown = [h for h in hashes if h not in self._fresh]
        cached = self.store.cached_vectors(unknown)
        missing = {h for h in unknown if h not in cached}
        first = [h for h in missing if h not in self._queue]
        self._queue.update((h, hashes[h]) for h in first)
        self._pending.append(_Pending(doc, source, chunks, status, missing, len(first)))
        if len(self._queue) >= WINDOW_CHUNKS or len(self._pending) >= WINDOW_CHUNKS:
            self.step()

    def step(self) -> None:
        """Embed the longest waiting texts, then commit them with every document now complete."""
        if self.images and self.images.pending:
            self.images.step()
        if not self._pending:
            return
        longest = sorted(self._queue, key=lambda h: len(self._queue[h]), reverse=True)[:STEP_CHUNKS]
        vecs = self.encoder().encode([self._queue[h] for h in longest]) if longest else []
        fresh = dict(zip(longest, vecs))
        for h in longest:
            del self._queue[h]
        self._fresh.update(fresh)
        done: list[_Pending] = []
        rest: list[_Pending] = []
        for p in self._pending:
            p.missing.difference_update(fresh)
            (rest if p.missing else done).append(p)
        self._pending = rest
        new_ids: list[int] = []
        with self.store.write() as gen:
            self.store.cache_vectors(fresh)
            for p in done:
                rows = self.store.put_document(p.doc, p.source, p.chunks, [terms(c.text) for c in p.chunks], {}, gen)
                new_ids += [cid for cid, _ in rows]
            removed = self.store.removed_since(gen - 1)
            hashes = [text_hash(c.text) for p in done for c in p.chunks]
            stored = self.store.cached_vectors(h for h in hashes if h not in self._fresh)
        self._apply(removed, np.array(new_ids, dtype=np.int64),
                    [self._fresh[h] if h in self._fresh else stored[h] for h in hashes])
        for p in done:
            self.reports.append(FileReport(p.doc.id, p.status, chunks=len(p.chunks), embedded=p.embedded,
                                           kind=p.doc.kind))
        if not self._pending:
            self._fresh.clear()     # all committed: the store's cache holds them now

    def flush(self) -> None:
        """Embed and commit everything queued."""
        while self._pending:
            self.step()
        if self.images:
            self.images.flush()

    def remove(self, doc_ids: Iterable[str]) -> int:
        """Delete documents now, in one commit; returns how many existed."""
        doc_ids = list(doc_ids)
        if not doc_ids:
            return 0
        with self.store.write() as gen:
            n = self.store.remove_documents(doc_ids)
            removed = self.store.removed_since(gen - 1)
        self._apply(removed, np.zeros(0, dtype=np.int64), [])
        return n

    def touch(self, entries: list[tuple[str, int, int]]) -> None:
        """Record new mtimes of files whose content is unchanged, so they are not read again."""
        if entries:
            with self.store.write(new_generation=False):
                for doc_id, size, mtime in entries:
                    self.store.touch(doc_id, size, mtime)

    def _apply(self, removed: np.ndarray, ids: np.ndarray, vecs: list[np.ndarray]) -> None:
        self.vectors.remove(removed)
        if len(ids):
            self.vectors.add(ids, np.vstack(vecs))

    def finish(self, folder: Path) -> None:
        """Drop unused cached vectors and save the vector index as of the store's generation."""
        self.flush()
        with self.store.write(new_generation=False):
            self.store.collect_garbage()
        gen = self.store.generation()
        self.vectors.save(folder, gen)
        with self.store.write(new_generation=False):
            self.store.prune_tombstones(gen)
        if self.images:
            self.images.finish()


@dataclass(frozen=True)
class _Read:
    """What the reader thread made of one file: its document and chunks, unchanged, or why not."""

    entry: FileEntry
    doc: Document | None = None
    chunks: list[Chunk] | None = None      # None: content unchanged (same hash as indexed)
    error: Unreadable | None = None
    picture: Any = None                    # an image's ``Picture``, when its content changed


def _read_ahead(entries: list[FileEntry], read: Callable[[FileEntry], _Read]) -> Iterator[_Read | None]:
    """``read`` each entry in a thread, up to ``READ_AHEAD_FILES`` ahead; yields None whenever the
    next file has been ``IDLE_SECONDS`` in coming, so the caller can put the wait to use."""
    out: queue.Queue = queue.Queue(maxsize=READ_AHEAD_FILES)
    stop = threading.Event()
    end = object()

    def run() -> None:
        try:
            for e in entries:
                if stop.is_set():
                    return
                out.put(read(e))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, raised there
            out.put(exc)
        out.put(end)

    thread = threading.Thread(target=run, name="searcher-reader", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = out.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                yield None
                continue
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():      # unblock a reader waiting on a full queue
            try:
                out.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def check_found(root: Path, found: Sequence[FileEntry | Skipped], known: bool) -> None:
    """Refuse a run that would index nothing into an index that holds nothing from ``root``."""
    if known or any(isinstance(e, FileEntry) for e in found):
        return
    skipped = [e for e in found if isinstance(e, Skipped)]
    reasons = f" ({len(skipped)} files skipped, e.g. {skipped[0].path.name}: {skipped[0].reason})" if skipped else ""
    raise SearcherError(f"{root}: nothing to index — no readable text files found{reasons}")



def _at_or_below(path: str, folders: set[str]) -> bool:
    """Whether ``path`` is one of ``folders`` or inside one (string work: this runs over every indexed
    file of a folder on each watcher run)."""
    while path not in folders:
        cut = path.rfind(os.sep)
        if cut <= 0:
            return False
        path = path[:cut]
    return True


def index_folder(root: Path, writer: Writer, options: WalkOptions, progress: Progress | None = None,
                 paths: Sequence[Path] | None = None, found: list[FileEntry | Skipped] | None = None) -> IndexReport:
    """Bring the index in line with ``root``: add new files, update changed ones, drop deleted ones.

    ``paths`` (files or folders below ``root``): bring only these in line, without walking the rest
    of ``root`` — what a watcher saw change; a path that is gone or now ignored leaves the index.

    A file that cannot be read is reported with its reason and the run goes on. If the problem
    may pass (permissions, a file vanishing or being written during the run, an unreadable
    folder) the version already indexed is kept; otherwise the file leaves the index, as it
    would if it were deleted. The skipped files are recorded for ``searcher info --files``.
    """
    started = time.monotonic()
    if not root.exists():
        raise SearcherError(f"{root}: no such file or folder")
    if found is None:
        found = list(walk(root, options) if paths is None else walk_paths(root, paths, options))
    known = writer.store.file_states(str(root))
    if paths is not None:
        asked = {str(p) for p in paths}
        known = {k: v for k, v in known.items() if _at_or_below(k, asked)}
    else:
        check_found(root, found, bool(known))
    entries = [e for e in found if isinstance(e, FileEntry)]
    skipped = [e for e in found if isinstance(e, Skipped)]

    reports: list[FileReport] = []
    keep: set[str] = set()
    touched: list[tuple[str, int, int]] = []
    for s in skipped:
        path = str(s.path)
        kept = [p for p in known if p == path or p.startswith(path.rstrip("/") + "/")] if s.transient else []
        if kept:
            keep.update(kept)
            reports.append(FileReport(path, "skipped", f"{s.reason}; previous version kept", kind=s.kind,
                                      failed=True))
        else:
            reports.append(FileReport(path, "removed" if path in known else "skipped", s.reason, kind=s.kind,
                                      failed=s.failed))
    to_read = []
    for e in entries:
        state = known.get(str(e.path))
        keep.add(str(e.path))
        if state and state.size == e.size and state.mtime_ns == e.mtime_ns:
            reports.append(FileReport(str(e.path), "unchanged", kind=e.kind))
        else:
            to_read.append(e)

    done = 0

    def read(e: FileEntry) -> _Read:
        """In the reader thread: one file read, hashed and chunked; progress counts files read."""
        nonlocal done
        picture = None
        try:
            if e.kind == "image":
                doc, picture = read_image(e, options.max_bytes)
            else:
                doc = read_document(e, options.max_bytes)
        except Unreadable as exc:
            return _Read(e, error=exc)
        finally:
            done += 1
            if progress:
                progress(done, len(to_read))
        state = known.get(str(e.path))
        if state and state.sha256 == doc.sha256:
            return _Read(e, doc)
        if picture is not None:
            return _Read(e, doc, picture=picture)
        return _Read(e, doc, writer.chunk(doc))

    with closing(_read_ahead(to_read, read)) as results:
        for r in results:
            if r is None:
                if writer.pending:
                    writer.step()
                continue
            path = str(r.entry.path)
            state = known.get(path)
            if r.error is not None:
                if r.error.transient and state:
                    reports.append(FileReport(path, "skipped", f"{r.error.reason}; previous version kept",
                                              kind=r.entry.kind, failed=True))
                else:
                    keep.discard(path)
                    reports.append(FileReport(path, "removed" if state else "skipped", r.error.reason,
                                              kind=r.entry.kind, failed=r.error.failed))
            elif r.picture is not None:
                writer.images.put(r.doc, r.picture, "updated" if state else "added")
            elif r.chunks is None:
                touched.append((path, r.doc.size, r.doc.mtime_ns))
                reports.append(FileReport(path, "unchanged", kind=r.entry.kind))
            else:
                writer.put(r.doc, "file", "updated" if state else "added", r.chunks)
    writer.flush()
    writer.touch(touched)
    gone = [p for p in known if p not in keep]
    writer.remove(gone)
    reported = {r.path for r in reports}
    reports += [FileReport(p, "removed", "deleted from the folder") for p in gone if p not in reported]
    reports += writer.reports
    writer.reports = []
    if writer.images:
        reports += writer.images.reports
        writer.images.reports = []
    with writer.store.write(new_generation=False):
        skiplog.record(writer.store.conn, str(root) if paths is None else [str(p) for p in paths], reports)
    return IndexReport(tuple(sorted(reports, key=lambda r: r.path)), time.monotonic() - started)
