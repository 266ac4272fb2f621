"""The read path: query → dense and keyword candidates → fusion → (rerank) → ``Hit`` records.

Filters are applied inside both legs (a FAISS ID selector, an SQL condition on the FTS5 query),
so a filtered search returns k hits whenever k matching chunks exist.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from ..errors import SearcherError
from ..records import Filters, Hit, Place
from ..store import keyword
from ..store.protocol import VectorStore
from ..store.sqlite import ChunkRow, Store
from .fusion import FUSIONS, MIN_CANDIDATES, Fusion, Leg, best_possible, rrf, zscore
from .snippets import make_snippet

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")
MAX_K = 10_000
RERANK_DEPTH = 50          # fused candidates handed to a cross-encoder
PRF_DOCS = 3               # hybrid feedback: the top fused chunks whose mean vector is added to the query
PRF_WEIGHT = 1.5           # ... with this weight relative to the query vector
KEYWORD_WEIGHT = 1.0       # hybrid: the keyword leg's weight (the dense leg's is 1.0, or 0 when it is blind)
PHRASE_WEIGHT = 1.0        # hybrid: the weight of the exact-phrase leg
RARE_WEIGHT = 0.5          # hybrid: the weight of the leg of query words that one chunk alone holds


class QueryEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...
    def unknown_fraction(self, text: str) -> float: ...


class Reranker(Protocol):
    def predict(self, pairs: list[tuple[str, str]], **kw) -> np.ndarray: ...


@dataclass(frozen=True)
class SearchOptions:
    k: int = 10
    mode: Mode = "hybrid"
    filters: Filters = field(default_factory=Filters)
    group_by_file: bool = False    # at most one hit (the best chunk) per document
    fusion: Fusion = "zscore"      # hybrid only: how the legs' candidates are combined
    feedback: bool = True          # hybrid only: pseudo-relevance feedback on the dense leg
    min_score: float | None = None
    rerank: str | None = None      # a sentence-transformers CrossEncoder name or path
    fold_identical: bool = True    # one hit per chunk text; the other places are listed in ``Hit.also``


def check_query(query: str, options: SearchOptions) -> str:
    """Refuse what cannot be answered, with a message that says what to change."""
    if not isinstance(query, str) or not query.strip():
        raise SearcherError("the query is empty: give some words to search for")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:   # lone surrogates: JSON "\ud800", or a command-line argument in no valid encoding
        raise SearcherError("the query is not valid Unicode text (it holds lone surrogate code points); "
                            "send it as UTF-8") from None
    k = options.k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k > MAX_K:
        raise SearcherError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    if options.mode not in MODES:
        raise SearcherError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    if options.fusion not in FUSIONS:
        raise SearcherError(f"fusion must be one of {', '.join(FUSIONS)}, got {options.fusion!r}")
    return query.strip()


def dense_weight(encoder: QueryEncoder, query: str) -> float:
    """How much of the query the model can see: 1 minus the share of its tokens that the model's own
    tokenizer maps to the unknown token. A leg that sees less than half of the query is dropped, so
    that, e.g., a Chinese query to an English model is answered by keywords alone instead of being
    drowned by the noise of its dense neighbours."""
    seen = 1.0 - encoder.unknown_fraction(query)
    return seen if seen >= 0.5 else 0.0


def search(query: str, options: SearchOptions, encoder: Callable[[], QueryEncoder], vectors: Callable[[], VectorStore],
           store: Store, reranker: Callable[[str], Reranker]) -> list[Hit]:
    """Run one query; call inside a store snapshot so every leg sees the same commit."""
    query = check_query(query, options)
    allowed = None if options.filters.empty else store.filtered_ids(options.filters)
    if allowed is not None and len(allowed) == 0:
        return []
    tokens = keyword.query_tokens(query) if options.mode != "dense" else None
    w_dense = 1.0
    if options.mode == "hybrid":
        w_dense = dense_weight(encoder(), query)
    qvec = encoder().encode([query])[0] if options.mode != "keyword" and w_dense > 0 else None

    n = max(MIN_CANDIDATES, options.k)
    while True:
        dense: list[tuple[int, float]] = []
        if qvec is not None:
            scores, ids = vectors().search(qvec, n, allowed)
            dense = [(int(i), float(s)) for i, s in zip(ids, scores)]
        kw = store.keyword_search(tokens, n, options.filters) if tokens else []
        if options.mode == "dense":
            ranked = dense
        elif options.mode == "keyword":
            ranked = kw
        else:
            fuse = zscore if options.fusion == "zscore" else rrf
            # fewer keyword hits than asked for: every other chunk holds no query word, BM25 0
            others = [Leg(KEYWORD_WEIGHT, kw, 0.0 if len(kw) < n else None)]
            if options.fusion == "zscore":   # rrf stays plain reciprocal rank fusion of the two legs
                others += [_phrase_leg(store, tokens, n, options.filters), _rare_leg(store, tokens, n, options.filters)]
            ranked = fuse([Leg(w_dense, dense), *others])
            if options.feedback and qvec is not None and kw:   # feedback needs the keyword leg's precision
                dense = _feedback_leg(qvec, ranked, vectors(), n, allowed)
                ranked = fuse([Leg(w_dense, dense), *others])
            best = best_possible(fuse, [Leg(w_dense, dense), *others])
        rows = store.chunk_rows([cid for cid, _ in ranked[:max(n, RERANK_DEPTH)]])
        ranked = [(cid, s) for cid, s in ranked if cid in rows]
        if options.fold_identical:
            ranked, also = _fold_identical(ranked, rows)
        if options.group_by_file:
            ranked = _best_per_document(ranked, rows)
        exhausted = len(dense) < n and len(kw) < n
        if len(ranked) >= options.k or exhausted or n >= MAX_K * 4:
            break
        n *= 4   # grouping collapsed too many candidates: look deeper
    raw = dict(ranked)
    if options.mode == "hybrid":   # shown on a 0..1 scale: 1 = ranked first by every leg (docs/search.md)
        ranked = [(cid, min(1.0, max(0.0, score / best)) if best > 0 else 0.0) for cid, score in ranked]
    if options.rerank:
        ranked = _rerank(query, ranked, rows, reranker(options.rerank), options.k)
    if options.min_score is not None:
        ranked = [(cid, score) for cid, score in ranked if score >= options.min_score]
    ranked = ranked[:options.k]
    cosines = _cosines(qvec, vectors(), [cid for cid, _ in ranked]) if qvec is not None else {}
    bm25 = dict(kw)
    return [_hit(rows[cid], score, query, [rows[a] for a in also.get(cid, ())] if options.fold_identical else [],
                 {"fused": raw.get(cid) if options.mode == "hybrid" else None, "dense": cosines.get(cid),
                  "keyword": bm25.get(cid)})
            for cid, score in ranked]


def _cosines(qvec: np.ndarray, vectors: VectorStore, ids: list[int]) -> dict[int, float]:
    """The query's cosine with each hit's stored vector (the dense leg's own score, before feedback)."""
    return dict(zip(ids, (vectors.reconstruct(ids) @ qvec).tolist())) if ids else {}


def _phrase_leg(store: Store, tokens: list[str] | None, n: int, filters: Filters) -> Leg:
    """Chunks holding the query's words in the query's order (score 1; every other chunk 0): a
    phrase copied from a document finds that document even when its words are common ones. A
    phrase few chunks hold stands far above the rest after standardisation; one that many hold
    says little."""
    hits = store.phrase_search(tokens, n, filters) if tokens and len(tokens) > 1 else []
    return Leg(PHRASE_WEIGHT, [(cid, 1.0) for cid in hits], 0.0 if len(hits) < n else None)


def _rare_leg(store: Store, tokens: list[str] | None, n: int, filters: Filters) -> Leg:
    """The chunks that alone hold a query word (a word of one chunk in the whole index), scored by
    how many such words they hold: the name or code someone remembers from one document. Such a
    chunk is about ten standard deviations above the rest of this leg's top 100."""
    rare = [t for t, df in store.chunk_frequencies(tokens or []).items() if df == 1]
    held = Counter(cid for t in rare for cid in store.phrase_search([t], n, filters))
    return Leg(RARE_WEIGHT, held.most_common(), 0.0)


def _feedback_leg(qvec: np.ndarray, fused: list[tuple[int, float]], vectors: VectorStore, n: int,
                  allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """Dense candidates for the query moved towards its best fused results (Rocchio pseudo-relevance
    feedback): the keyword leg's precision steers the dense leg towards the right vocabulary."""
    top = vectors.reconstruct([cid for cid, _ in fused[:PRF_DOCS]])
    moved = qvec + PRF_WEIGHT * top.mean(axis=0)
    moved /= np.linalg.norm(moved) or 1.0
    scores, ids = vectors.search(moved, n, allowed)
    return [(int(i), float(s)) for i, s in zip(ids, scores)]


def _fold_identical(ranked: list[tuple[int, float]], rows: dict[int, ChunkRow]
                    ) -> tuple[list[tuple[int, float]], dict[int, list[int]]]:
    """One result per chunk text: an identical file or a copied passage is listed as another place
    of the best-ranked copy (``Hit.also``) instead of filling the results with the same text."""
    first: dict[str, int] = {}
    also: dict[int, list[int]] = {}
    out = []
    for cid, score in ranked:
        text = rows[cid].text
        if text in first:
            also[first[text]].append(cid)
        else:
            first[text], also[cid] = cid, []
            out.append((cid, score))
    return out, also


def _best_per_document(ranked: list[tuple[int, float]], rows: dict[int, ChunkRow]) -> list[tuple[int, float]]:
    seen: set[str] = set()
    out = []
    for cid, score in ranked:
        doc = rows[cid].doc_id
        if doc not in seen:
            seen.add(doc)
            out.append((cid, score))
    return out


def _rerank(query: str, ranked: list[tuple[int, float]], rows: dict[int, ChunkRow], model: Reranker,
            k: int) -> list[tuple[int, float]]:
    """Re-score the top candidates with a cross-encoder; the rest keep their order below them."""
    top = ranked[:max(RERANK_DEPTH, k)]
    scores = model.predict([(query, rows[cid].text) for cid, _ in top], show_progress_bar=False)
    rescored = sorted(((cid, float(s)) for (cid, _), s in zip(top, np.asarray(scores).reshape(-1))),
                      key=lambda x: -x[1])
    return rescored + ranked[len(top):]


def _hit(row: ChunkRow, score: float, query: str, also: list[ChunkRow], scores: dict[str, float | None]) -> Hit:
    snippet = make_snippet(row.text, query)
    return Hit(id=row.doc_id, path=row.path, score=float(score), scores=scores, text=row.text,
               lines=(row.start_line, row.end_line), metadata=row.metadata, chunk=row.ord,
               chars=(row.start_char, row.end_char), page=row.page, heading=row.heading,
               snippet=snippet.text, snippet_line=row.start_line + snippet.line_offset,
               also=tuple(Place(id=r.doc_id, path=r.path, lines=(r.start_line, r.end_line), chunk=r.ord, page=r.page,
                                heading=r.heading) for r in also))
