"""Fusion: how the dense and keyword legs' ranked candidates become one ranking.

Each leg is a weighted list of (chunk id, score), best first; a weight of 0 drops the leg (for
example the dense leg of a query its model cannot read, ``query.dense_weight``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Fusion = Literal["zscore", "rrf"]
FUSIONS: tuple[Fusion, ...] = ("zscore", "rrf")
RRF_K = 60                 # the constant of reciprocal rank fusion (Cormack et al. 2009)
MIN_CANDIDATES = 100       # candidates per leg before fusion


def rrf(legs: Sequence[tuple[float, Sequence[tuple[int, float]]]]) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of (weight, ranked (id, score) list) legs, best first.

    Scores are scaled so that first place in every leg scores 1.0."""
    fused: dict[int, float] = {}
    top = sum(w for w, ranked in legs if w > 0 and ranked) / (RRF_K + 1)
    for weight, ranked in legs:
        if weight <= 0:
            continue
        for rank, (cid, _) in enumerate(ranked, 1):
            fused[cid] = fused.get(cid, 0.0) + weight / (RRF_K + rank) / top
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


def zscore(legs: Sequence[tuple[float, Sequence[tuple[int, float]]]]) -> list[tuple[int, float]]:
    """Weighted sum of each leg's scores standardised over its top ``MIN_CANDIDATES`` candidates
    (a convex combination of z-scores); a candidate missing from a leg gets the score of that leg's
    last head candidate. Scores therefore do not depend on how deep the legs were searched.

    Unlike rank fusion it keeps how far ahead a candidate is, which measured better (docs/benchmarks.md)."""
    legs = [(w, ranked) for w, ranked in legs if w > 0 and ranked]
    total = sum(w for w, _ in legs) or 1.0
    fused: dict[int, float] = {}
    floors = []
    for weight, ranked in legs:
        head = np.array([s for _, s in ranked[:MIN_CANDIDATES]])
        mean, sd = float(head.mean()), float(head.std()) or 1.0
        z = {cid: (s - mean) / sd for cid, s in ranked}
        floor = (float(head[-1]) - mean) / sd
        floors.append((weight / total, floor, z))
    for cid in {cid for _, ranked in legs for cid, _ in ranked}:
        fused[cid] = sum(w * z.get(cid, floor) for w, floor, z in floors)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))
