"""Near-identical pictures: the same photo resized, recompressed, cropped a little, in two tiers.

- *exact*: the 64-bit DCT perceptual hashes (``imagehash.phash``, stored at indexing) differ in at
  most ``HASH_DISTANCE`` bits — the same picture re-encoded or resized; scored 1 − distance / 64;
- *near*: the image vectors' cosine is at least ``NEAR_COSINE`` — also crops and small rotations,
  which move a perceptual hash far; scored by the cosine.

Candidates are each picture's ``NEIGHBOURS`` nearest by vector (``units.neighbours``: exact kNN,
IVF on large collections) plus the pictures sharing a hash, so nothing is quadratic. Both
defaults are measured on labelled variants of scikit-image's photos, cross-validated
(scripts/bench_images.py, docs/benchmarks.md "Images").
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import SearcherError
from ..records import DuplicateGroup, DuplicatePair
from .duplicates import _groups, check_threshold
from .units import Units, neighbours

TIERS = ("exact", "near")
HASH_DISTANCE = 4            # bits of 64: re-encodings measured at 0–4, distinct pictures ≥ 16
NEAR_COSINE = 0.85           # EfficientNet-Lite0 GeM vectors: cross-validated 0.87 and 0.84 (folds), distinct ≤ 0.83
NEIGHBOURS = 10


def hash_distances(hashes: Sequence[bytes], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Bits in which the 64-bit hashes of the pairs (i, j) differ."""
    h = np.frombuffer(b"".join(hashes), dtype=">u8").astype(np.uint64) if hashes else np.zeros(0, np.uint64)
    return np.bitwise_count(h[i] ^ h[j]).astype(np.int64)


def candidates(hashes: Sequence[bytes], vectors: np.ndarray) -> np.ndarray:
    """Pairs (i < j) worth scoring: vector neighbours, and pictures whose hashes are equal."""
    n = len(hashes)
    parts = []
    if n > 1:
        _, idx = neighbours(vectors, NEIGHBOURS)
        i = np.repeat(np.arange(n), idx.shape[1])
        parts.append(np.c_[i, idx.ravel()])
    by_hash: dict[bytes, list[int]] = {}
    for u, h in enumerate(hashes):
        by_hash.setdefault(h, []).append(u)
    for same in by_hash.values():
        parts += [np.array([[same[0], u]]) for u in same[1:]]
    if not parts:
        return np.zeros((0, 2), np.int64)
    pairs = np.vstack(parts).astype(np.int64)
    pairs = pairs[(pairs[:, 1] >= 0) & (pairs[:, 0] != pairs[:, 1])]
    return np.unique(np.sort(pairs, axis=1), axis=0).reshape(-1, 2)


def find(ids: Sequence[str], hashes: Sequence[bytes], vectors: np.ndarray, tiers: Iterable[str] = TIERS,
         hash_distance: int | None = None, near_cosine: float | None = None) -> list[DuplicateGroup]:
    """Groups of near-identical pictures (``ids`` are their paths), exact tier and largest groups first."""
    tiers = tuple(dict.fromkeys(tiers))
    bad = [t for t in tiers if t not in TIERS]
    if bad or not tiers:
        raise SearcherError(f"image duplicate tier must be one of {', '.join(TIERS)}, got {', '.join(bad) or 'none'}")
    check_threshold(near_cosine, "near threshold")
    if hash_distance is not None and not (isinstance(hash_distance, int) and 0 <= hash_distance <= 64):
        raise SearcherError(f"hash distance must be a whole number of bits from 0 to 64, got {hash_distance!r}")
    max_bits = HASH_DISTANCE if hash_distance is None else hash_distance
    min_cos = NEAR_COSINE if near_cosine is None else near_cosine
    cand = candidates(hashes, vectors)
    bits = hash_distances(hashes, cand[:, 0], cand[:, 1])
    cos = np.einsum("ij,ij->i", vectors[cand[:, 0]], vectors[cand[:, 1]]) if len(cand) else np.zeros(0)
    exact = (bits <= max_bits) if "exact" in tiers else np.zeros(len(cand), bool)
    near = ~exact & (cos >= min_cos) if "near" in tiers else np.zeros(len(cand), bool)
    pairs: dict[tuple[int, int], DuplicatePair] = {}
    for (a, b), d in zip(cand[exact].tolist(), bits[exact].tolist()):
        pairs[(a, b)] = DuplicatePair(ids[a], ids[b], "exact", round(1 - d / 64, 4))
    for (a, b), c in zip(cand[near].tolist(), cos[near].tolist()):
        pairs[(a, b)] = DuplicatePair(ids[a], ids[b], "near", round(float(c), 4))
    ids = list(ids)
    return _groups(Units(ids, ids, list(ids), [""] * len(ids), [""] * len(ids), vectors), pairs)
