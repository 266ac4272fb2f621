"""Fusion: how the legs' ranked candidates (dense, keyword, exact phrase, rare word) become one ranking.

Each leg is a weighted list of (chunk id, score), best first; a weight of 0 drops the leg (for
example the dense leg of a query its model cannot read, ``query.dense_weight``).

**What the fused score means** (the default, ``zscore``): the weighted mean, over the legs, of how
many standard deviations a chunk's score lies above the mean of that leg's top ``MIN_CANDIDATES``
(100) scores. The top 100 of a leg are the 100 best chunks of the whole index for that leg, so
when the keyword leg finds fewer than 100 chunks, the rest of its top 100 are chunks holding no
query word, whose BM25 is exactly 0: they are counted as such (``Leg.unlisted``). A chunk a leg did
not return gets that leg's 100th score. So a word found in one chunk only makes that chunk stand
about ten standard deviations above the others instead of counting for nothing (a lone hit used
to be its own mean, z = 0), and the fewer chunks hold the query's words, the more their keyword
evidence weighs. The legs of a hybrid query (``search.query``): dense (weight 1, 0 when the model
cannot read the query), keyword BM25 (1), exact phrase (1) and rare word (0.5); the last two score 1
per chunk holding the phrase / a word no other chunk holds, 0 elsewhere, and are left out when no
chunk qualifies. The fused score is unbounded (about −2 to 10); 0 is an average top-100 candidate.
docs/search.md says why this and not reciprocal rank fusion; docs/benchmarks.md has the numbers.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import numpy as np

Fusion = Literal["zscore", "rrf"]
FUSIONS: tuple[Fusion, ...] = ("zscore", "rrf")
RRF_K = 60                 # the constant of reciprocal rank fusion (Cormack et al. 2009)
MIN_CANDIDATES = 100       # candidates per leg before fusion


class Leg(NamedTuple):
    weight: float
    ranked: Sequence[tuple[int, float]]   # (chunk id, score), best first
    unlisted: float | None = None         # the score of every chunk not in ``ranked``, when it is known


def rrf(legs: Sequence[Leg | tuple[float, Sequence[tuple[int, float]]]]) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of the legs, best first.

    Scores are scaled so that first place in every leg scores 1.0."""
    fused: dict[int, float] = {}
    legs = [Leg(*leg) for leg in legs]
    top = sum(leg.weight for leg in legs if leg.weight > 0 and leg.ranked) / (RRF_K + 1)
    for leg in legs:
        if leg.weight <= 0:
            continue
        for rank, (cid, _) in enumerate(leg.ranked, 1):
            fused[cid] = fused.get(cid, 0.0) + leg.weight / (RRF_K + rank) / top
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


def zscore(legs: Sequence[Leg | tuple[float, Sequence[tuple[int, float]]]]) -> list[tuple[int, float]]:
    """Weighted mean of each leg's scores standardised over that leg's top ``MIN_CANDIDATES`` (see the
    module docstring); a candidate missing from a leg gets the leg's 100th score. Scores therefore
    do not depend on how deep the legs were searched.

    Unlike rank fusion it keeps how far ahead a candidate is, which measured better (docs/benchmarks.md)."""
    legs = [leg for leg in (Leg(*x) for x in legs) if leg.weight > 0 and leg.ranked]
    total = sum(leg.weight for leg in legs) or 1.0
    fused: dict[int, float] = {}
    parts = []
    for leg in legs:
        head = np.array([s for _, s in leg.ranked[:MIN_CANDIDATES]])
        if len(head) < MIN_CANDIDATES and leg.unlisted is not None:
            head = np.concatenate([head, np.full(MIN_CANDIDATES - len(head), leg.unlisted)])
        mean, sd = float(head.mean()), float(head.std()) or 1.0
        z = {cid: (s - mean) / sd for cid, s in leg.ranked}
        floor = (float(head[-1]) - mean) / sd
        parts.append((leg.weight / total, floor, z))
    for cid in {cid for leg in legs for cid, _ in leg.ranked}:
        fused[cid] = sum(w * z.get(cid, floor) for w, floor, z in parts)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


def best_possible(fuse: Callable[[Sequence[Leg]], list[tuple[int, float]]], legs: Sequence[Leg]) -> float:
    """The fused score of a chunk ranked first by every leg: what a hybrid score is divided by to
    be shown on a 0..1 scale. Computed by the same fusion, with each leg's top candidate replaced
    by one virtual chunk (id -1), so the legs' statistics are those of the real query."""
    virtual = [Leg(leg.weight, [(-1, leg.ranked[0][1]), *leg.ranked[1:]] if leg.ranked else [], leg.unlisted)
               for leg in legs]
    return dict(fuse(virtual)).get(-1, 0.0)
