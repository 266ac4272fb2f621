"""What the analyses work on: documents (or chunks) with one unit vector each, and their neighbours.

A document's vector is the normalised mean of its chunk vectors: measured on the co-relevance
benchmark (docs/analyze.md) it is as good as best-chunk pairing and needs one vector per
document, so every analysis can hold a whole collection in memory (100,000 × 384 floats = 150 MB).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SearcherError
from ..store.sqlite import AnalysisChunk

EXACT_KNN_LIMIT = 20_000     # up to this many units neighbours are exact; above, an IVF index


@dataclass(frozen=True)
class Units:
    """Parallel lists: one entry per document (or chunk), ``vectors`` unit length."""

    ids: list[str]
    docs: list[str]              # the document of each unit (its own id for documents)
    paths: list[str | None]
    texts: list[str]
    terms: list[str]             # keyword-index terms, space separated
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def title(self, i: int) -> str:
        return first_line(self.texts[i])


def first_line(text: str, width: int = 100) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return line if len(line) <= width else line[:width - 1] + "…"


def normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(norms > 0, norms, 1)).astype(np.float32)


def documents(chunks: Sequence[AnalysisChunk], vectors: np.ndarray) -> Units:
    """One unit per document: the chunks' texts joined, the mean of their vectors."""
    starts = [i for i, c in enumerate(chunks) if i == 0 or c.doc_id != chunks[i - 1].doc_id]
    ends = starts[1:] + [len(chunks)]
    sums = np.add.reduceat(vectors, starts, axis=0) if chunks else np.zeros((0, vectors.shape[1]), np.float32)
    ids = [chunks[s].doc_id for s in starts]
    return Units(ids, ids, [chunks[s].path for s in starts],
                 ["\n".join(c.text for c in chunks[s:e]) for s, e in zip(starts, ends)],
                 [" ".join(c.terms for c in chunks[s:e]) for s, e in zip(starts, ends)], normalise(sums))


def chunk_units(chunks: Sequence[AnalysisChunk], vectors: np.ndarray) -> Units:
    """One unit per chunk, named ``document id#chunk number``."""
    return Units([f"{c.doc_id}#{c.ord}" for c in chunks], [c.doc_id for c in chunks], [c.path for c in chunks],
                 [c.text for c in chunks], [c.terms for c in chunks], normalise(vectors))


def require(units: Units, at_least: int, what: str) -> None:
    if len(units) < at_least:
        raise SearcherError(f"{what} needs at least {at_least} documents in the index (after filters), "
                            f"found {len(units)}; index more or loosen --path/--type/--since/--meta")


def neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosines, indices) of each row's ``k`` nearest other rows, best first; -1 where fewer exist.

    Exact (FAISS flat) up to ``EXACT_KNN_LIMIT`` rows; above, an inverted-file index probing 8
    of 2·√n lists (recall@10 0.998 against exact on 100,000 vectors), so that 100,000 chunks take seconds instead of a 10¹⁰-pair product."""
    import faiss

    n, dim = vectors.shape
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if n <= EXACT_KNN_LIMIT:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = int(2 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        index.train(x[rng.choice(n, min(n, 40 * nlist), replace=False)])
        index.nprobe = 8
    index.add(x)
    sims, idx = index.search(x, k + 1)
    # drop each row itself (exact copies may come first in either order)
    own = idx == np.arange(n)[:, None]
    keep = ~own
    keep[np.flatnonzero(~own.any(1)), -1] = False
    return sims[keep].reshape(n, k), idx[keep].reshape(n, k)
