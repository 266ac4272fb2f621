"""The write path: documents → chunks → vectors → one committed batch at a time.

Batches are small (a few hundred chunks, or a few seconds of work), so an interrupted run loses
at most the batch in flight; every committed batch is a complete, searchable state, and the next
run picks up from it because unchanged content is recognised by its hash.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import skiplog
from .chunking import ChunkingConfig, chunk_document
from .embedding import Encoder
from .errors import SearcherError
from .ingest import FileEntry, Skipped, Unreadable, WalkOptions, read_document, walk
from .keyword import terms
from .records import Chunk, Document, FileReport, IndexReport
from .store import Store, text_hash
from .vectors import VectorIndex

# (files done, files to read) — called as the run advances, for progress bars.
Progress = Callable[[int, int], None]

BATCH_CHUNKS = 256        # chunks to embed before a commit
BATCH_SECONDS = 5.0       # ...or time spent reading, whichever comes first


@dataclass(frozen=True)
class _Pending:
    doc: Document
    source: str
    chunks: list[Chunk]
    status: str               # "added" | "updated"


class Writer:
    """Writes documents into the store and keeps the in-memory vector index in step with commits."""

    def __init__(self, store: Store, vectors: VectorIndex, encoder: Callable[[], Encoder],
                 chunking: ChunkingConfig):
        # the encoder is asked for only when there is text to cut or embed: a run that finds
        # nothing changed never loads the model
        self.store, self.vectors, self.encoder, self.chunking = store, vectors, encoder, chunking
        self._pending: list[_Pending] = []
        self._pending_chunks = 0
        self._since = time.monotonic()
        self.reports: list[FileReport] = []

    def chunk(self, doc: Document) -> list[Chunk]:
        return chunk_document(doc.text, doc.blocks, self.encoder().token_spans, self.chunking,
                              hard_pages=doc.page_unit == "page")

    def put(self, doc: Document, source: str, status: str) -> None:
        """Queue a new or changed document; commits when the batch is full."""
        chunks = self.chunk(doc)
        self._pending.append(_Pending(doc, source, chunks, status))
        self._pending_chunks += len(chunks)
        if self._pending_chunks >= BATCH_CHUNKS or time.monotonic() - self._since >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Embed what the cache lacks and commit the queued documents in one transaction."""
        pending, self._pending, self._pending_chunks = self._pending, [], 0
        if not pending:
            self._since = time.monotonic()
            return
        hashes = {text_hash(c.text): c.text for p in pending for c in p.chunks}
        known = self.store.cached_vectors(hashes)
        missing = [h for h in hashes if h not in known]
        fresh = dict(zip(missing, self.encoder().encode([hashes[h] for h in missing]))) if missing else {}
        vectors = {**known, **fresh}
        new_ids: list[int] = []
        with self.store.write() as gen:
            for p in pending:
                own = {text_hash(c.text) for c in p.chunks}
                rows = self.store.put_document(p.doc, p.source, p.chunks, [terms(c.text) for c in p.chunks],
                                               {h: fresh[h] for h in own if h in fresh}, gen)
                new_ids += [cid for cid, _ in rows]
            removed = self.store.removed_since(gen - 1)
            new_vecs = [vectors[h] for p in pending for h in (text_hash(c.text) for c in p.chunks)]
        self._apply(removed, np.array(new_ids, dtype=np.int64), new_vecs)
        embedded_by_doc = _first_use(pending, set(fresh))
        for p, emb in zip(pending, embedded_by_doc):
            self.reports.append(FileReport(p.doc.id, p.status, chunks=len(p.chunks), embedded=emb,
                                           kind=p.doc.kind))
        self._since = time.monotonic()   # BATCH_SECONDS counts reading time, not the embedding just done

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


def _first_use(pending: list[_Pending], fresh: set[bytes]) -> list[int]:
    """How many chunks each document caused to be embedded (a shared new text counts once)."""
    seen: set[bytes] = set()
    out = []
    for p in pending:
        n = 0
        for c in p.chunks:
            h = text_hash(c.text)
            if h in fresh and h not in seen:
                seen.add(h)
                n += 1
        out.append(n)
    return out


def index_folder(root: Path, writer: Writer, options: WalkOptions, progress: Progress | None = None) -> IndexReport:
    """Bring the index in line with ``root``: add new files, update changed ones, drop deleted ones.

    A file that cannot be read is reported with its reason and the run goes on. If the problem
    may pass (permissions, a file vanishing or being written during the run, an unreadable
    folder) the version already indexed is kept; otherwise the file leaves the index, as it
    would if it were deleted. The skipped files are recorded for ``searcher info --files``.
    """
    started = time.monotonic()
    if not root.exists():
        raise SearcherError(f"{root}: no such file or folder")
    found = list(walk(root, options))
    known = writer.store.file_states(str(root))
    entries = [e for e in found if isinstance(e, FileEntry)]
    skipped = [e for e in found if isinstance(e, Skipped)]
    if not entries and not known:
        reasons = f" ({len(skipped)} files skipped, e.g. {skipped[0].path.name}: {skipped[0].reason})" if skipped else ""
        raise SearcherError(f"{root}: nothing to index — no readable text files found{reasons}")

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
    for done, e in enumerate(to_read):
        path = str(e.path)
        state = known.get(path)
        try:
            doc = read_document(e, options.max_bytes)
        except Unreadable as exc:
            if exc.transient and state:
                reports.append(FileReport(path, "skipped", f"{exc.reason}; previous version kept", kind=e.kind,
                                          failed=True))
            else:
                keep.discard(path)
                reports.append(FileReport(path, "removed" if state else "skipped", exc.reason, kind=e.kind,
                                          failed=True))
            continue
        finally:
            if progress:
                progress(done + 1, len(to_read))
        if state and state.sha256 == doc.sha256:
            touched.append((path, doc.size, doc.mtime_ns))
            reports.append(FileReport(path, "unchanged", kind=e.kind))
        else:
            writer.put(doc, "file", "updated" if state else "added")
    writer.flush()
    writer.touch(touched)
    gone = [p for p in known if p not in keep]
    writer.remove(gone)
    reported = {r.path for r in reports}
    reports += [FileReport(p, "removed", "deleted from the folder") for p in gone if p not in reported]
    reports += writer.reports
    writer.reports = []
    with writer.store.write(new_generation=False):
        skiplog.record(writer.store.conn, str(root), reports)
    return IndexReport(tuple(sorted(reports, key=lambda r: r.path)), time.monotonic() - started)
