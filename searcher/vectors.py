"""The FAISS vector index: a derived, rebuildable cache of the vectors held in SQLite.

Saved as ``vectors.g<generation>.faiss``: the generation of the store it reflects is in the file
name, and the file is written to a temporary name, fsynced and renamed, so a reader never sees a
half-written index and always knows how far behind the store it is.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

_NAME = re.compile(r"^vectors\.g(\d+)\.faiss$")


def _faiss():
    import faiss  # imported lazily: a few hundred ms that commands without vectors need not pay

    return faiss


class VectorIndex:
    """Exact inner-product search over unit vectors (cosine similarity), keyed by chunk id."""

    kind = "flat"
    description = "exact (FAISS IndexFlatIP, cosine on unit vectors)"

    def __init__(self, dim: int, index=None):
        faiss = _faiss()
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the ``k`` nearest vectors (fewer if the index is smaller), considering
        only the ids in ``allowed`` when it is given (a FAISS ID selector: filtering inside the search)."""
        k = min(k, len(self) if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        params = None
        if allowed is not None:
            params = _faiss().SearchParameters(sel=_faiss().IDSelectorBatch(np.ascontiguousarray(allowed, np.int64)))
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k,
                                        params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, folder: Path, generation: int) -> Path:
        """Write atomically as the index of ``generation`` and delete older files."""
        faiss = _faiss()
        final = folder / f"vectors.g{generation:012d}.faiss"
        tmp = folder / f".{final.name}.{os.getpid()}.tmp"
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(folder)
        for old, gen in saved_files(folder):
            if gen < generation:
                old.unlink(missing_ok=True)
        return final

    @classmethod
    def load(cls, folder: Path, dim: int) -> tuple[VectorIndex, int] | None:
        """The newest saved index and its generation, or None if there is none."""
        faiss = _faiss()
        for path, gen in sorted(saved_files(folder), key=lambda p: -p[1]):
            try:
                index = faiss.read_index(str(path))
            except (RuntimeError, OSError):
                continue  # deleted by a writer between listing and reading, or damaged: try older
            if index.d == dim:
                return cls(dim, index), gen
        return None


def saved_files(folder: Path) -> list[tuple[Path, int]]:
    out = []
    for p in folder.iterdir() if folder.is_dir() else ():
        m = _NAME.match(p.name)
        if m:
            out.append((p, int(m.group(1))))
    return out


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
