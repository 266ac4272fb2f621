"""The image rows of an index: SQLite tables beside the chunks, and their own FAISS file.

An image is a document (a row of ``documents``, so change detection, deletion and the skip log
treat it like any file) with no chunks and one row of ``images``: its size, EXIF date, perceptual
hash and vector. The image vectors are a second vector space of the index (their dimension and
meaning differ from the chunks'), kept in ``images.g<generation>.faiss`` exactly as the chunk
vectors are kept in ``vectors.g…``: a derived cache, saved atomically at the end of a run, caught
up from SQLite by generation (``images.gen``, ``image_tombstones``) and rebuilt when it cannot be.
Searched exactly (flat): a photo collection of 10⁵ pictures scans in milliseconds. The tables are
created by the first run of an index with an image model (docs/format.md).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ingest.pathtext import from_db, to_db
from ..records import Document
from .faiss_index import VectorIndex
from .sqlite import Store, decode_vectors, encode_vector

STEM = "images"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    document  INTEGER NOT NULL UNIQUE REFERENCES documents(id) ON DELETE CASCADE,
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    taken     TEXT,
    phash     BLOB NOT NULL,
    vector    BLOB NOT NULL,
    gen       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS images_gen ON images(gen);
CREATE INDEX IF NOT EXISTS documents_sha256 ON documents(sha256);
CREATE TABLE IF NOT EXISTS image_tombstones (id INTEGER PRIMARY KEY, gen INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS image_tombstone AFTER DELETE ON images BEGIN
    INSERT OR REPLACE INTO image_tombstones (id, gen)
    VALUES (old.id, (SELECT value FROM meta WHERE key = 'generation'));
END;
INSERT OR IGNORE INTO meta VALUES ('image_tombstones_pruned_through', 0);
"""


@dataclass(frozen=True)
class ImageRow:
    """A stored image as hits and analyses show it."""

    id: int                      # the vector's id in images.g*.faiss
    doc_id: str
    path: str
    width: int
    height: int
    taken: str | None
    mtime_ns: int
    phash: bytes


def create_tables(store: Store) -> None:
    """Add the image tables to an index (idempotent: a creation cut short is simply redone)."""
    store.conn.executescript(_SCHEMA)


def has_tables(store: Store) -> bool:
    return store.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'images'").fetchone() is not None


def count(store: Store) -> int:
    return int(store.conn.execute("SELECT count(*) FROM images").fetchone()[0])


def put_image(store: Store, doc: Document, width: int, height: int, taken: str | None, phash: bytes,
              vector: np.ndarray, gen: int) -> int:
    """Insert or replace an image document and its row (inside ``store.write()``); returns its id."""
    store.put_document(doc, "file", [], [], {}, gen)      # replacing it deletes the old image row (cascade)
    cur = store.conn.execute(
        "INSERT INTO images (document, width, height, taken, phash, vector, gen) "
        "SELECT id, ?, ?, ?, ?, ?, ? FROM documents WHERE doc_id = ?",
        (width, height, taken, phash, encode_vector(vector, "float32"), gen, to_db(doc.id)))
    return int(cur.lastrowid)


def vector_by_content(store: Store, sha256: str, dim: int) -> np.ndarray | None:
    """The stored vector of a picture with this content hash (a copied or moved file), if any."""
    row = store.conn.execute("SELECT i.vector FROM images i JOIN documents d ON d.id = i.document "
                             "WHERE d.sha256 = ? LIMIT 1", (sha256,)).fetchone()
    return decode_vectors([row[0]], dim, "float32")[0] if row else None


def vectors_since(store: Store, gen: int, dim: int, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of the images added after generation ``gen`` (all for gen < 0)."""
    cur = store.conn.execute("SELECT id, vector FROM images WHERE gen > ? ORDER BY id", (gen,))
    while rows := cur.fetchmany(batch):
        yield (np.fromiter((r[0] for r in rows), np.int64, len(rows)),
               decode_vectors([r[1] for r in rows], dim, "float32"))


def removed_since(store: Store, gen: int) -> np.ndarray:
    return np.array([r[0] for r in store.conn.execute("SELECT id FROM image_tombstones WHERE gen > ?", (gen,))],
                    dtype=np.int64)


def pruned_through(store: Store) -> int:
    row = store.conn.execute("SELECT value FROM meta WHERE key = 'image_tombstones_pruned_through'").fetchone()
    return int(row[0]) if row else 0


def prune(store: Store, through_gen: int) -> None:
    """Forget image deletions that a saved image index already reflects (inside ``store.write()``)."""
    store.conn.execute("DELETE FROM image_tombstones WHERE gen <= ?", (through_gen,))
    store.conn.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'image_tombstones_pruned_through'",
                       (through_gen,))


def synced(store: Store, folder: Path, dim: int, held: tuple[VectorIndex, int] | None) -> tuple[VectorIndex, int]:
    """The image vector index as of the current snapshot, and its generation: ``held`` (or the newest
    saved file not newer than the snapshot, else an empty index) caught up with later commits."""
    if held is None or held[1] < pruned_through(store):
        held = _saved(store, folder, dim)
    _catch_up(store, dim, *held)
    return held[0], store.generation()


def _saved(store: Store, folder: Path, dim: int) -> tuple[VectorIndex, int]:
    """The newest saved image index usable at the current snapshot, else an empty one (-1)."""
    loaded = VectorIndex.load(folder, dim, STEM)
    usable = loaded is not None and pruned_through(store) <= loaded[1] <= store.generation()
    return loaded if usable else (VectorIndex(dim), -1)


def _catch_up(store: Store, dim: int, index: VectorIndex, at: int) -> bool:
    """Apply the image deletions and additions committed after generation ``at``; whether there were any."""
    if at >= store.generation():
        return False
    removed = removed_since(store, at)
    index.remove(removed)
    added = 0
    for ids, vecs in vectors_since(store, at, dim):
        index.add(ids, vecs)
        added += len(ids)
    return bool(len(removed) or added) or at < 0


def save(store: Store, folder: Path, dim: int) -> None:
    """At the end of a run: bring the saved image index up to the store's generation and save it, then
    prune the tombstones it reflects. A run that changed no picture leaves the file as it is (readers
    catch up from its older generation: nothing to apply), so text-only runs never rewrite it."""
    index, at = _saved(store, folder, dim)
    if not _catch_up(store, dim, index, at):
        return
    gen = store.generation()
    index.save(folder, gen, STEM)
    with store.write(new_generation=False):
        prune(store, gen)


def rows(store: Store, ids: Sequence[int] | None = None) -> dict[int, ImageRow]:
    """Stored images by id: these ``ids``, or all of them."""
    q = ("SELECT i.id, d.doc_id, d.path, i.width, i.height, i.taken, d.mtime_ns, i.phash "
         "FROM images i JOIN documents d ON d.id = i.document")
    if ids is None:
        found = store.conn.execute(q + " ORDER BY i.id").fetchall()
    else:
        ids = [int(i) for i in ids]
        found = [r for a in range(0, len(ids), 500)
                 for r in store.conn.execute(q + f" WHERE i.id IN ({','.join('?' * len(ids[a:a + 500]))})", ids[a:a + 500])]
    return {r[0]: ImageRow(r[0], from_db(r[1]), from_db(r[2]), *r[3:]) for r in found}


def all_vectors(store: Store, dim: int) -> tuple[list[ImageRow], np.ndarray]:
    """Every stored image and its vector, in id order (for duplicates)."""
    found = rows(store)
    ordered = [found[i] for i in sorted(found)]
    vecs = np.vstack([v for _, v in vectors_since(store, -1, dim)]) if ordered else np.zeros((0, dim), np.float32)
    return ordered, vecs


def find(store: Store, path: str, dim: int) -> tuple[int, np.ndarray] | None:
    """The id and vector of the indexed image at ``path`` (a document id), if it is one."""
    row = store.conn.execute("SELECT i.id, i.vector FROM images i JOIN documents d ON d.id = i.document "
                             "WHERE d.doc_id = ?", (to_db(path),)).fetchone()
    return (int(row[0]), decode_vectors([row[1]], dim, "float32")[0]) if row else None
