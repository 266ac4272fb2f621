"""Similar documents: "more like this" for an indexed document, a chunk, or any text.

Two legs fused like hybrid search (z-scores, ``search.fusion.zscore``):
- meaning: cosine between the mean chunk vector of the document asked about and each candidate
  document's mean chunk vector (candidates: the ANN index's nearest chunks);
- words: the document's ``TERMS`` highest tf-idf keyword terms as one BM25 query
  (Lucene's more-like-this), each candidate scored by its best chunk.
Measured on co-relevance (docs/analyze.md): the fusion, meaning weighted ``DENSE_WEIGHT`` to 1,
beats either leg alone on cranfield and scifact.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..embed.base import TextEncoder
from ..errors import SearcherError
from ..ingest.chunking import ChunkingConfig, chunk_document
from ..ingest.readers import kind_of
from ..ingest.walk import FileEntry, Unreadable, read_document
from ..records import Filters, Similar
from ..search.fusion import zscore
from ..store.keyword import fts_tokens
from ..store.keyword import terms as index_terms
from ..store.protocol import VectorStore
from ..store.sqlite import Store
from .units import documents, first_line

TERMS = 25
DENSE_WEIGHT = 2.0
CANDIDATES = 200


def top_terms(store: Store, terms: Sequence[str], n: int = TERMS) -> list[str]:
    """The ``n`` terms of a text with the highest tf-idf (chunk frequencies from the index)."""
    tf = Counter(terms)
    df = store.term_document_counts(tf)
    total = max(store.chunk_count(), 1)
    return sorted(tf, key=lambda t: (-tf[t] * math.log((total + 1) / (df.get(t, 0) + 1)), t))[:n]


def similar(store: Store, vectors: VectorStore, query_vectors: np.ndarray, query_terms: Sequence[str], k: int,
            filters: Filters, exclude: str | None = None) -> list[Similar]:
    """The ``k`` documents most like the one whose chunk vectors and keyword terms are given
    (``exclude``: its own id, left out of the answer). Call inside a store snapshot."""
    if not isinstance(k, int) or k <= 0:
        raise SearcherError(f"k must be a positive whole number, got {k!r}")
    q = query_vectors.mean(0)
    q = (q / (np.linalg.norm(q) or 1.0)).astype(np.float32)
    allowed = None if filters.empty else store.filtered_ids(filters)
    if allowed is not None and not len(allowed):
        return []
    n = max(CANDIDATES, 4 * k)
    _, dense_ids = vectors.search(q, n, allowed)
    words = top_terms(store, query_terms)
    keyword = store.keyword_search(fts_tokens(" ".join(words)), n, filters) if words else []
    hit_chunks, _ = store.analysis_chunks(chunk_ids=[*map(int, dense_ids), *(c for c, _ in keyword)])
    doc_of = {c.id: c.doc_id for c in hit_chunks}
    wanted = sorted(set(doc_of.values()) - {exclude})
    if not wanted:
        return []
    units = documents(*store.analysis_chunks(doc_ids=wanted))
    pos = {d: i for i, d in enumerate(units.ids)}
    cosine = units.vectors @ q
    dense = sorted(((i, float(c)) for i, c in enumerate(cosine)), key=lambda x: -x[1])
    best: dict[int, float] = {}
    for cid, score in keyword:
        d = doc_of.get(cid)
        if d in pos and score > best.get(pos[d], -math.inf):
            best[pos[d]] = score
    fused = zscore([(DENSE_WEIGHT, dense), (1.0, sorted(best.items(), key=lambda x: -x[1]))])
    return [Similar(units.ids[i], units.paths[i], round(s, 4), round(float(cosine[i]), 4),
                    first_line(units.texts[i])) for i, s in fused[:k]]


def target_vectors(store: Store, target: str, index: Path) -> tuple[np.ndarray, list[str], str]:
    """Chunk vectors, keyword terms and document id of an indexed document (id or path) or chunk (``ID#n``)."""
    candidates = [target] + ([str(Path(target).expanduser().resolve())] if not target.startswith("/") else [])
    for doc_id in candidates:
        chunks, vectors = store.analysis_chunks(doc_ids=[doc_id])
        if chunks:
            return vectors, " ".join(c.terms for c in chunks).split(), doc_id
    doc_id, _, number = target.rpartition("#")
    if doc_id and number.isdigit():
        for d in [doc_id] + ([str(Path(doc_id).expanduser().resolve())] if not doc_id.startswith("/") else []):
            chunks, vectors = store.analysis_chunks(doc_ids=[d])
            picked = [i for i, c in enumerate(chunks) if c.ord == int(number)]
            if picked:
                return vectors[picked], chunks[picked[0]].terms.split(), d
            if chunks:
                raise SearcherError(f"similar: document {d} has chunks 0..{len(chunks) - 1}, not {number}")
    raise SearcherError(f"similar: '{target}' is not an indexed document id or path (nor ID#chunk) "
                        f"in {index}; see `searcher files`, or pass a file that is not indexed with --file")


def file_vectors(path: Path, encoder: TextEncoder, chunking: ChunkingConfig) -> tuple[np.ndarray, list[str]]:
    """A file read, chunked and embedded as indexing would, not stored."""
    if not path.is_file():
        raise SearcherError(f"similar --file {path}: no such file")
    try:
        doc = read_document(FileEntry(path.resolve(), path.stat().st_size, path.stat().st_mtime_ns,
                                      kind_of(path.name) or "text"))
    except Unreadable as exc:
        raise SearcherError(f"similar --file {path}: cannot be read ({exc})") from None
    chunks = chunk_document(doc.text, doc.blocks, encoder.token_spans, chunking)
    if not chunks:
        raise SearcherError(f"similar --file {path}: has no text to compare")
    return encoder.encode([c.text for c in chunks]), [t for c in chunks for t in index_terms(c.text)]
