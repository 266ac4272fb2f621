"""Outliers: the documents farthest from the nearest tenth of the collection.

A document's distance is the 10 % quantile of its cosine distances to a fixed sample of the
collection (up to ``REFERENCE`` documents): how far one must go to reach a tenth of the rest.
Nearest-neighbour distances (the usual score) miss a *group* of strays, whose members are each
other's neighbours; the quantile does not, as long as the group is under a tenth of the
collection (measured: scripts/bench_analyze.py). The score divides by the collection's median
distance, so 2.0 reads "twice as far from the rest as a typical document".
"""
from __future__ import annotations

import numpy as np

from ..errors import SearcherError
from ..records import Outlier
from .units import Units, neighbours, require

QUANTILE = 0.10
REFERENCE = 1000
_BLOCK = 4096


def distances(vectors: np.ndarray) -> np.ndarray:
    """Each row's cosine distance to the nearest ``QUANTILE`` of the reference sample."""
    n = len(vectors)
    ref = np.sort(np.random.default_rng(0).choice(n, min(n, REFERENCE), replace=False))
    out = np.empty(n, np.float32)
    for s in range(0, n, _BLOCK):
        d = 1.0 - vectors[s:s + _BLOCK] @ vectors[ref].T
        rows, cols = np.nonzero(ref[None, :] == np.arange(s, min(n, s + _BLOCK))[:, None])
        d[rows, cols] = np.nan        # not itself
        out[s:s + _BLOCK] = np.nanquantile(d, QUANTILE, axis=1)
    return out


def rank(units: Units, k: int) -> list[Outlier]:
    if not isinstance(k, int) or k <= 0:
        raise SearcherError(f"k must be a positive whole number, got {k!r}")
    require(units, 3, "outliers")
    dist = distances(units.vectors)
    typical = float(np.median(dist)) or 1e-9
    order = np.argsort(-dist, kind="stable")[:k]
    sims, idx = neighbours(units.vectors, 1)
    return [Outlier(units.ids[i], units.paths[i], round(float(dist[i]) / typical, 3), round(float(dist[i]), 4),
                    units.ids[idx[i, 0]], round(float(sims[i, 0]), 4), units.title(i)) for i in order.tolist()]
