"""Which FAISS structure an index uses, and how well it finds the true neighbours.

``choose`` picks the structure from how many vectors there are and a memory budget: exact search
while one scan is fast enough, then an HNSW graph, or IVF lists (scalar quantized by the vector
dtype) when the graph does not fit the budget, with product quantization when not even that fits.
``calibrate`` finds the smallest efSearch / nprobe whose recall@10 against exact search, for
query-like vectors, reaches ``CALIBRATION_TARGET``. The index wrapper (``faiss_index.py``) builds,
searches and saves what these decide.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import SearcherError

KINDS = ("flat", "hnsw", "ivf", "ivfpq")
DTYPES = ("float32", "float16", "int8")
FLAT_MAX = 50_000          # exact search up to here: one-thread scan of 50k x 384 float32 ≈ 5 ms
HNSW_M = 16                # graph degree: 128 bytes of links per vector (M=32: twice the build time)
HNSW_EF_CONSTRUCTION = 48  # a sparser graph is made up for by the efSearch that calibration finds
RECALL_TARGET = 0.95       # what the default structures promise, recall@10 against exact search
CALIBRATION_TARGET = 0.95  # what calibration asks of the query-like vectors (docs/benchmarks.md, bench_scale)
PQ_MIN_TRAIN = 10_000      # product quantization trains 256 centroids per sub-vector
_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096)
_CODE = {"float32": "Flat", "float16": "SQfp16", "int8": "SQ8"}
_BYTES = {"float32": 4, "float16": 2, "int8": 1}


def _parse_budget(value: int | str | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", value.lower())
    if not m:
        raise SearcherError(f"--memory-budget '{value}': give a size such as 800MB or 4GB")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


@dataclass(frozen=True)
class AnnSettings:
    """What the index's owner asked for (kept in the manifest): a kind or "auto", the dtype the
    vectors are stored in, and the RAM budget for the vector structure (None: half the machine's)."""

    ann: str = "auto"
    dtype: str = "float32"
    memory_budget: int | None = None

    def __post_init__(self) -> None:
        if self.ann not in ("auto", *KINDS):
            raise SearcherError(f"--ann '{self.ann}': choose auto, {', '.join(KINDS)}")
        if self.dtype not in DTYPES:
            raise SearcherError(f"--vector-dtype '{self.dtype}': choose {', '.join(DTYPES)}")
        budget = _parse_budget(self.memory_budget)
        if budget is not None and budget <= 0:
            raise SearcherError(f"--memory-budget {self.memory_budget}: give a positive size such as 2GB")
        object.__setattr__(self, "memory_budget", budget)

    @property
    def budget(self) -> int:
        if self.memory_budget is not None:
            return self.memory_budget
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


@dataclass(frozen=True)
class AnnSpec:
    """One concrete FAISS structure: kind, code dtype and its size parameters."""

    kind: str = "flat"
    dtype: str = "float32"
    nlist: int = 0          # ivf, ivfpq: inverted lists
    pq_m: int = 0           # ivfpq: bytes per vector code

    def factory(self) -> str:
        code = _CODE[self.dtype]
        if self.kind == "flat":
            return f"IDMap2,{code}"
        if self.kind == "hnsw":
            return f"IDMap2,HNSW{HNSW_M}" + ("" if code == "Flat" else f"_{code}")
        if self.kind == "ivf":
            return f"IVF{self.nlist},{code}"
        return f"IVF{self.nlist},PQ{self.pq_m}"

    def bytes_per_vector(self, dim: int) -> int:
        """RAM per vector, ids and links included (approximately: hash maps round up)."""
        code = dim * _BYTES[self.dtype]
        return {"flat": code + 24, "hnsw": code + 8 * HNSW_M + 40, "ivf": code + 24}.get(self.kind, self.pq_m + 24)

    def describe(self) -> str:
        codes = {"float32": "float32", "float16": "float16", "int8": "int8 (SQ8)"}[self.dtype]
        return {"flat": f"exact (FAISS flat inner product, {codes} vectors)",
                "hnsw": f"HNSW graph (FAISS, M={HNSW_M}, {codes} vectors)",
                "ivf": f"IVF (FAISS, {self.nlist} lists, {codes} vectors)",
                "ivfpq": f"IVF-PQ (FAISS, {self.nlist} lists, {self.pq_m}-byte product-quantized codes)"}[self.kind]


@dataclass(frozen=True)
class AnnState:
    """What was measured and trained: saved with the index, shown by ``searcher info``."""

    recall: float | None = 1.0    # recall@10 against exact search over the same stored vectors
    queries: int = 0              # query-like vectors the recall was measured with
    measured_at: int = 0          # vectors in the index when it was measured
    search_param: int = 0         # hnsw: efSearch; ivf, ivfpq: nprobe
    trained_on: int = 0           # vectors the quantizer / lists were trained on
    built_for: int = 0            # vectors in the index when it was built (or first trained)


def _nlist(n: int) -> int:
    return max(1, min(2 ** round(math.log2(max(2.0, 2 * math.sqrt(n)))), n // 39))


def choose(n: int, dim: int, settings: AnnSettings, current: AnnSpec | None = None) -> AnnSpec:
    """The structure for ``n`` vectors: flat while a scan is fast, then the fastest kind that fits
    the budget. ``current`` gives hysteresis: an index that left flat returns only below half of
    ``FLAT_MAX``, so that deleting a few documents does not trigger rebuilds back and forth."""
    dtype, budget = settings.dtype, settings.budget

    def fits(spec: AnnSpec) -> bool:
        return n * spec.bytes_per_vector(dim) <= budget

    def pq() -> AnnSpec:
        if n < PQ_MIN_TRAIN:
            return AnnSpec("ivf", dtype, _nlist(n))
        ms = [m for m in (96, 64, 48, 32, 24, 16, 12, 8) if dim % m == 0] or [1]
        return next((s for s in (AnnSpec("ivfpq", dtype, _nlist(n), m) for m in ms) if fits(s)),
                    AnnSpec("ivfpq", dtype, _nlist(n), ms[-1]))

    if settings.ann == "flat":
        return AnnSpec("flat", dtype)
    if settings.ann == "hnsw":
        return AnnSpec("hnsw", dtype)
    if settings.ann == "ivf":
        return AnnSpec("ivf", dtype, _nlist(n))
    if settings.ann == "ivfpq":
        return pq()
    flat_max = FLAT_MAX // 2 if current is not None and current.kind != "flat" else FLAT_MAX
    if n <= flat_max and fits(AnnSpec("flat", dtype)):
        return AnnSpec("flat", dtype)
    for spec in (AnnSpec("hnsw", dtype), AnnSpec("ivf", dtype, _nlist(n))):
        if fits(spec):
            return spec
    return pq()


def calibrate(spec: AnnSpec, n: int, queries: np.ndarray, truth: np.ndarray,
              search_at: Callable[[int], np.ndarray]) -> tuple[int, float]:
    """The smallest search parameter of ``spec`` (efSearch, nprobe) whose recall@10 against the
    exact neighbours ``truth`` reaches ``CALIBRATION_TARGET`` (the largest tried, if none does),
    and that recall. ``search_at(p)`` returns the structure's 10 ids per query at parameter ``p``."""
    ladder = {"flat": [0], "hnsw": [p for p in _LADDER if p <= max(n, 16)]}.get(
        spec.kind, sorted({min(p, spec.nlist) for p in (1, 2, 4, 8, *_LADDER)}))

    def recall_at(p: int) -> float:
        return _recall_at_10(search_at(p), truth)

    param = next((p for p in ladder if recall_at(p) >= CALIBRATION_TARGET), ladder[-1])
    return param, round(recall_at(param), 4)


def exact_ids(source: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of each query's ``k`` highest inner products over ``source``, best first."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for ids, vecs in source():
        vecs = np.asarray(vecs, dtype=np.float32)
        s = np.hstack([best_s, queries @ vecs.T])
        i = np.hstack([best_i, np.broadcast_to(ids, (len(queries), len(ids)))])
        top = np.argpartition(-s, min(k, s.shape[1]) - 1, axis=1)[:, :k] if s.shape[1] else np.zeros((len(s), 0), int)
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, 1)


def _recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the queries' true 10 nearest neighbours that are among their 10 results."""
    hits = sum(len(set(f[:10]).intersection(t[:10])) for f, t in zip(found, truth))
    return hits / max(1, truth[:, :10].size)
