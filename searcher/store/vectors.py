"""Where an index keeps its vectors: the local FAISS file (the default) or a Milvus collection.

The choice is made when the index is created (``searcher index --vector-store milvus``), recorded in
the manifest, and changed only by ``searcher migrate``. Either way SQLite stays the source of truth
(documents, chunks, keyword index and every vector); the vector store is what nearest-neighbour
search runs on, kept in step with SQLite by generation (docs/format.md).
"""
from __future__ import annotations

from pathlib import Path

from .protocol import VectorStore, VectorStoreConfig


def open_vectors(config: VectorStoreConfig, folder: Path, dim: int, generation: int, pruned: int, *,
                 writing: bool, token: str | None = None) -> tuple[VectorStore, int]:
    """The index's vector store and the generation it reflects, for a snapshot at ``generation``.

    The caller catches the store up from SQLite (tombstones and chunks after that generation).
    FAISS: the newest saved file not newer than the snapshot, else an empty index (-1) to rebuild.
    Milvus: for the writer, the generation recorded in Milvus (the collection is emptied, -1, when
    it cannot be caught up); for readers, ``generation`` itself — the collection is shared and
    only the writer, holding the lock, changes it."""
    if config.kind == "milvus":
        from .milvus import MilvusVectors

        return MilvusVectors.open(config, dim, generation, pruned, writing=writing, token=token)
    from .faiss_index import VectorIndex

    loaded = VectorIndex.load(folder, dim)
    if loaded is not None and loaded[1] <= generation:
        return loaded
    return VectorIndex(dim), -1


def create_vectors(config: VectorStoreConfig, dim: int, token: str | None = None) -> VectorStore:
    """A new, empty store of this kind (for ``migrate``), replacing whatever the target held."""
    if config.kind == "milvus":
        from .milvus import MilvusVectors

        return MilvusVectors.create(config, dim, token)
    from .faiss_index import VectorIndex

    return VectorIndex(dim)


def discard_vectors(config: VectorStoreConfig, folder: Path, token: str | None = None) -> None:
    """Delete a store the index no longer uses (after a migration has switched the manifest)."""
    if config.kind == "milvus":
        from .milvus import drop_collections

        drop_collections(config, token)
    else:
        from .faiss_index import saved_files

        for path, _ in saved_files(folder):
            path.unlink(missing_ok=True)
