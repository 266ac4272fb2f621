"""The read path: query text → query vector → nearest chunks → ``Hit`` records."""
from __future__ import annotations

import numpy as np

from .errors import SearcherError
from .records import Hit
from .store import Store
from .vectors import VectorIndex

MAX_K = 10_000


def check_query(query: str, k: int) -> str:
    """Refuse what cannot be answered, with a message that says what to change."""
    if not isinstance(query, str) or not query.strip():
        raise SearcherError("the query is empty: give some words to search for")
    if not isinstance(k, int) or k < 1 or k > MAX_K:
        raise SearcherError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return query.strip()


def dense_search(query_vector: np.ndarray, k: int, vectors: VectorIndex, store: Store) -> list[Hit]:
    """The ``k`` chunks nearest to the query vector, best first; call inside a store snapshot."""
    scores, ids = vectors.search(query_vector, k)
    rows = store.chunk_rows(ids)
    hits = []
    for score, cid in zip(scores, ids):
        row = rows.get(int(cid))
        if row is None:
            continue  # a vector newer than this snapshot's chunks: not part of this answer
        hits.append(Hit(id=row.doc_id, path=row.path, score=float(score), text=row.text,
                        lines=(row.start_line, row.end_line), metadata=row.metadata, chunk=row.ord,
                        chars=(row.start_char, row.end_char), page=row.page, heading=row.heading))
    return hits
