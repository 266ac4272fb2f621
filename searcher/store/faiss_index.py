"""The FAISS vector index: a derived, rebuildable cache of the vectors held in SQLite.

The structure (flat, HNSW, IVF, IVF-PQ) and its search parameter are decided in ``ann.py``; this
wrapper builds it from the store's vectors, searches it with filters and tombstones, and saves it.

Saved as ``vectors.g<generation>.faiss`` plus ``vectors.g<generation>.json`` (kind, parameters,
measured recall, tombstones): each written to a temporary name, fsynced and renamed, the JSON first,
so the .faiss file is the commit point and a reader always knows how far behind the store it is.
Loaded memory-mapped and read-only, so a query process shares the page cache instead of holding its
own copy of the vectors; the first change makes a private copy.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from .ann import HNSW_EF_CONSTRUCTION, AnnSettings, AnnSpec, AnnState, calibrate, choose, exact_ids

EXACT_FILTER_MAX = 20_000  # an ANN search whose filter allows at most this many ids scores them exactly
COMPACT_FRACTION = 0.1     # an HNSW graph is rebuilt when this share of its nodes are tombstones
REGROW = 2                 # an approximate structure is rebuilt once the index has grown this many times
TEXT = "vectors"            # file-name stem of the chunk vectors; the image vectors are "images" (docs/format.md)
_BATCH = 32_768


def _faiss():
    import faiss  # imported lazily: a few hundred ms that commands without vectors need not pay

    return faiss


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """One query is fastest on one thread: OpenMP workers contend on a loaded machine."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _new_index(spec: AnnSpec, dim: int):
    faiss = _faiss()
    index = faiss.index_factory(dim, spec.factory(), faiss.METRIC_INNER_PRODUCT)
    if spec.kind == "hnsw":
        faiss.downcast_index(index.index).hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


def _ivf_ready(index) -> None:
    """IVF keeps its own ids; a hash-table direct map lets it remove and reconstruct by id."""
    faiss = _faiss()
    if index.direct_map.type != faiss.DirectMap.Hashtable:
        index.set_direct_map_type(faiss.DirectMap.Hashtable)


VectorBatches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
Progress = Callable[[int, int], None]


class VectorIndex:
    """Inner-product search over unit vectors (cosine similarity), keyed by chunk id."""

    def __init__(self, dim: int, index=None, spec: AnnSpec = AnnSpec(), state: AnnState = AnnState(),
                 deleted: np.ndarray | None = None):
        self.dim = dim
        self.spec = spec
        self.state = state
        self.index = index if index is not None else _new_index(spec, dim)
        self.deleted = np.zeros(0, np.int64) if deleted is None else np.unique(deleted.astype(np.int64))
        self._mapped = False        # a read-only view of a saved file: copy before changing
        self._dirty = index is None
        self._not_deleted = None    # cached FAISS selector for the tombstones

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def description(self) -> str:
        return self.spec.describe()

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.deleted)

    # ---- changes -------------------------------------------------------------------------------
    def _own(self) -> None:
        faiss = _faiss()
        if self._mapped:
            self.index = faiss.deserialize_index(faiss.serialize_index(self.index))
            self._mapped = False
            if self.kind in ("ivf", "ivfpq"):
                _ivf_ready(faiss.extract_index_ivf(self.index))
        self._dirty = True

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        self._own()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if not self.index.is_trained:     # an int8 flat index learns its value ranges from its first vectors
            self.index.train(x)
            self.state = replace(self.state, trained_on=len(x), built_for=len(x))
        self.index.add_with_ids(x, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        """Forget these ids (ids not in the index are ignored). An HNSW graph cannot delete: its
        ids become tombstones, never returned, until ``maintain`` compacts the graph."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if self.kind != "hnsw":
            self._own()
            self.index.remove_ids(ids)
            return
        present = ids[np.isin(ids, _faiss().vector_to_array(self.index.id_map))]
        fresh = np.setdiff1d(present, self.deleted)
        if len(fresh):
            self.deleted = np.union1d(self.deleted, fresh)
            self._not_deleted = None
            self._dirty = True

    # ---- search --------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the ``k`` nearest vectors (fewer if the index is smaller), considering
        only the ids in ``allowed`` when it is given (a FAISS ID selector: filtering inside the search).

        An approximate structure with a selective filter may find fewer than k allowed ids near
        the query: a small allowed set is therefore scored exactly from its vectors, and a search
        that still comes back short is redone exactly."""
        faiss = _faiss()
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            if len(self.deleted):
                allowed = np.setdiff1d(allowed, self.deleted)
        k = min(k, len(self) if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        approximate = self.kind != "flat"
        if approximate and allowed is not None and len(allowed) <= EXACT_FILTER_MAX:
            return self._exact(q[0], k, allowed)
        if allowed is not None:
            sel = faiss.IDSelectorBatch(allowed)
        else:
            sel = self._tombstone_selector()
        widen = 1 if allowed is None else min(8, math.ceil(len(self) / max(1, len(allowed))))
        with _threads(1):
            scores, ids = self.index.search(q, k, params=self._params(sel, self.state.search_param * widen))
        keep = ids[0] >= 0
        if approximate and keep.sum() < k:
            return self._exact(q[0], k, allowed if allowed is not None else self._live_ids())
        return scores[0][keep], ids[0][keep]

    def _params(self, sel, p: int):
        """Search parameters: efSearch or nprobe ``p`` (ignored by flat), and the ID selector."""
        faiss = _faiss()
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = p
        elif self.kind in ("ivf", "ivfpq"):
            params = faiss.SearchParametersIVF()
            params.nprobe = min(p, self.spec.nlist)
        elif sel is None:
            return None
        else:
            params = faiss.SearchParameters()
        if sel is not None:
            params.sel = sel      # the caller keeps ``sel`` alive until the search returns
        return params

    def _tombstone_selector(self):
        if not len(self.deleted):
            return None
        if self._not_deleted is None:
            faiss = _faiss()
            batch = faiss.IDSelectorBatch(self.deleted)
            self._not_deleted = faiss.IDSelectorNot(batch)
            self._not_deleted.referenced = batch   # keep the inner selector alive
        return self._not_deleted

    def _live_ids(self) -> np.ndarray:
        faiss = _faiss()
        if self.kind in ("ivf", "ivfpq"):
            ids = _ivf_ids(faiss.extract_index_ivf(self.index))
        else:
            ids = faiss.vector_to_array(self.index.id_map)
        return np.setdiff1d(ids, self.deleted)

    def _exact(self, q: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k among ``ids``, scored from their stored vectors a slice at a time."""
        best_s, best_i = np.zeros(0, np.float32), np.zeros(0, np.int64)
        for a in range(0, len(ids), _BATCH):
            part = ids[a:a + _BATCH]
            s = np.concatenate([best_s, self.reconstruct(part) @ q])
            i = np.concatenate([best_i, part])
            top = np.argpartition(-s, k - 1)[:k] if len(s) > k else np.arange(len(s))
            best_s, best_i = s[top], i[top]
        order = np.lexsort((best_i, -best_s))
        return best_s[order].astype(np.float32), best_i[order]

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these ids, one row each (decoded from int8 / float16 codes)."""
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    # ---- structure -----------------------------------------------------------------------------
    def maintain(self, settings: AnnSettings, source: VectorBatches, queries: Callable[[], np.ndarray],
                 progress: Progress | None = None) -> bool:
        """Before a save: switch to the structure that now fits, compact a graph full of
        tombstones, or rebuild one that has doubled since it was built (IVF lists and int8 ranges
        retrained, the search parameter calibrated again with ``queries()``), from ``source``: the
        store's vectors. Returns whether it rebuilt."""
        n = len(self)
        target = choose(n, self.dim, settings, self.spec)
        outgrown = n >= REGROW * max(1, self.state.built_for) and (
            self.kind != "flat" or (self.spec.dtype == "int8" and self.state.built_for < 65_536))
        if (target.kind != self.kind or target.dtype != self.spec.dtype or target.pq_m != self.spec.pq_m
                or len(self.deleted) > COMPACT_FRACTION * max(1, self.index.ntotal) or outgrown):
            self.rebuild(target, source, n, queries, progress)
            return True
        return False

    def rebuild(self, spec: AnnSpec, source: VectorBatches, n: int, queries: Callable[[], np.ndarray],
                progress: Progress | None = None) -> None:
        """Build ``spec`` from ``source`` (all live vectors, in batches): train on an even sample
        when the structure needs training, add every vector, then calibrate with ``queries()``."""
        index = _new_index(spec, self.dim)
        trained_on = 0
        if not index.is_trained and n:
            want = min(n, {"ivf": 64 * spec.nlist, "ivfpq": max(64 * spec.nlist, 65_536)}.get(spec.kind, 65_536))
            sample = _sample(source, n, want)
            index.train(sample)
            trained_on = len(sample)
        if spec.kind in ("ivf", "ivfpq"):
            _ivf_ready(index)
        done = 0
        for ids, vecs in (_all_at_once(source, n, self.dim) if spec.kind == "hnsw" else source()):
            index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.ascontiguousarray(ids))
            done += len(ids)
            if progress:
                progress(done, n)
        self.index, self.spec, self.deleted, self._not_deleted = index, spec, np.zeros(0, np.int64), None
        self.state = AnnState(trained_on=trained_on, built_for=done)
        self._mapped, self._dirty = False, True
        self._calibrate(source, queries)

    def _calibrate(self, source: VectorBatches, queries: Callable[[], np.ndarray]) -> None:
        """Measure recall@10 against exact float search over ``source`` (the store's vectors) for
        query-like vectors, and keep the smallest efSearch / nprobe that reaches
        ``CALIBRATION_TARGET``; quantization loss counts as lost recall. Not stored vectors: one the
        structure holds is found far too easily, and ones held out of it are neighbours of their
        near-duplicates, which no query is (at a million chunks, held-out ones needed efSearch 4096
        for 0.93 where real questions had 0.975 at 1024; docs/benchmarks.md, bench_scale)."""
        n = len(self)
        if (self.kind == "flat" and self.spec.dtype == "float32") or not n:
            self.state = replace(self.state, recall=1.0 if self.kind == "flat" else None, queries=0,
                                 measured_at=n, search_param=0 if self.kind == "flat" else 64)
            return
        q = np.ascontiguousarray(queries(), dtype=np.float32)
        param, recall = calibrate(self.spec, n, q, exact_ids(source, q, 10),
                                  lambda p: self.index.search(q, 10, params=self._params(None, p))[1])
        self.state = replace(self.state, recall=recall, queries=len(q), measured_at=n, search_param=param)

    # ---- persistence ---------------------------------------------------------------------------
    def close(self) -> None:
        """Nothing to release: the index lives in this process (a mapped file is unmapped with it)."""

    def save(self, folder: Path, generation: int, stem: str = TEXT) -> Path:
        """Write atomically as the index of ``generation`` and delete older files (``stem``: which
        vector space of the index, chunks or images)."""
        faiss = _faiss()
        final = folder / f"{stem}.g{generation:012d}.faiss"
        if not self._dirty and final.exists():
            return final
        meta = {"spec": asdict(self.spec), "state": asdict(self.state), "deleted": self.deleted.tolist()}
        _write_atomic(final.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(meta), encoding="utf-8"))
        _write_atomic(final, lambda tmp: faiss.write_index(self.index, str(tmp)))
        _fsync_dir(folder)
        for old in folder.glob(f"{stem}.g*.*"):
            m = re.match(rf"^{stem}\.g(\d+)\.(faiss|json)$", old.name)
            if m and int(m.group(1)) < generation:
                old.unlink(missing_ok=True)
        self._dirty = False
        return final

    @classmethod
    def load(cls, folder: Path, dim: int, stem: str = TEXT) -> tuple[VectorIndex, int] | None:
        """The newest saved index and its generation, or None if there is none. Memory-mapped."""
        faiss = _faiss()
        for path, gen in sorted(saved_files(folder, stem), key=lambda p: -p[1]):
            try:
                meta = _read_meta(path)
                index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            except (RuntimeError, OSError, ValueError, KeyError):
                continue  # deleted by a writer between listing and reading, or damaged: try older
            if index.d != dim:
                continue
            spec = AnnSpec(**meta["spec"])
            if spec.kind in ("ivf", "ivfpq") and faiss.extract_index_ivf(index).direct_map.type == 0:
                index = faiss.read_index(str(path))   # a direct map is built in memory: no view to keep
                _ivf_ready(faiss.extract_index_ivf(index))
            vi = cls(dim, index, spec, AnnState(**meta["state"]), np.array(meta["deleted"], dtype=np.int64))
            vi._mapped = True
            return vi, gen
        return None


def saved_info(folder: Path) -> dict[str, Any] | None:
    """The newest saved index's kind, parameters and measured recall, without loading it."""
    for path, gen in sorted(saved_files(folder), key=lambda p: -p[1]):
        try:
            meta = _read_meta(path)
            size = path.stat().st_size
        except (OSError, ValueError, KeyError):
            continue
        spec, state = AnnSpec(**meta["spec"]), AnnState(**meta["state"])
        return {"kind": spec.kind, "description": spec.describe(), "dtype": spec.dtype,
                "search_param": state.search_param, "recall@10": state.recall,
                "recall_queries": state.queries, "measured_at": state.measured_at,
                "tombstones": len(meta["deleted"]), "generation": gen, "file_bytes": size}
    return None


def _read_meta(path: Path) -> dict[str, Any]:
    """The JSON beside a .faiss file; a file written before it existed is exact and flat."""
    try:
        return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"spec": asdict(AnnSpec()), "state": asdict(AnnState()), "deleted": []}


def _ivf_ids(ivf) -> np.ndarray:
    faiss = _faiss()
    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
             for i in range(ivf.nlist) if lists.list_size(i)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _all_at_once(source: VectorBatches, n: int, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The ``n`` vectors of ``source`` as one batch. FAISS links the nodes of one ``add`` in random
    order within each level, but batches in store order (by document, so neighbours arrive together)
    make a far worse graph: at a million chunks, recall@10 at efSearch 512 was 0.947 when added 8,192
    at a time, 0.950 in adds of 131,072, 0.986 in one add (docs/benchmarks.md). Costs one float32
    copy of the vectors while the graph is built."""
    ids, vecs, done = np.empty(n, np.int64), np.empty((n, dim), np.float32), 0
    for batch_ids, batch in source():
        if done + len(batch_ids) > len(ids):     # ``n`` was short: make room rather than fail
            extra = max(len(ids), len(batch_ids))
            ids, vecs = np.concatenate([ids, np.empty(extra, np.int64)]), np.vstack([vecs, np.empty((extra, dim), np.float32)])
        ids[done:done + len(batch_ids)], vecs[done:done + len(batch_ids)] = batch_ids, batch
        done += len(batch_ids)
    if done:
        yield ids[:done], vecs[:done]


def _sample(source: VectorBatches, n: int, want: int) -> np.ndarray:
    """About ``want`` vectors spread evenly over ``source`` (ordered by id, hence by document)."""
    step = max(1, n // max(1, want))
    parts, seen = [], 0
    for _, vecs in source():
        first = (-seen) % step
        parts.append(np.asarray(vecs[first::step], dtype=np.float32))
        seen += len(vecs)
    return np.ascontiguousarray(np.vstack(parts)) if parts else np.zeros((0, 0), np.float32)


def _write_atomic(final: Path, write: Callable[[Path], Any]) -> None:
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def saved_files(folder: Path, stem: str = TEXT) -> list[tuple[Path, int]]:
    out = []
    for p in folder.iterdir() if folder.is_dir() else ():
        m = re.match(rf"^{stem}\.g(\d+)\.faiss$", p.name)
        if m:
            out.append((p, int(m.group(1))))
    return out


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
