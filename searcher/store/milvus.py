"""Milvus as the vector store, through ``pymilvus.MilvusClient``: a milvus-lite file, a standalone
server or a cluster — only the URI differs.

Milvus holds one row per chunk: its id (the SQLite ``chunks.id``, never reused) and its unit vector.
Everything else — text, documents, metadata, the keyword index — stays in SQLite, and filters are
evaluated there and pushed into the Milvus search as a primary-key condition, so filtered, hybrid
and incremental behaviour is the same as with FAISS. Searches use Milvus's ``Session`` consistency:
a process sees its own writes at once and other processes' within a time tick (~200 ms), without
paying ``Strong``'s wait for the next tick on every search. A second, one-row collection
``<collection>_state`` records the generation the vectors reflect; the writer catches Milvus up from
SQLite from that generation on (upserts and deletes are idempotent), exactly like the FAISS file.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import SearcherError
from .protocol import VectorStoreConfig

TOKEN_ENV = "SEARCHER_MILVUS_TOKEN"
MAX_TOPK = 16_384         # Milvus's largest search limit
FILTER_IDS = 10_000       # allowed ids per search expression; larger filters are searched in parts
WRITE_ROWS = 2_000        # rows per upsert/delete call (keeps gRPC messages far below 64 MB)
STATE_ROW = 0
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
IVF_PARAMS = {"nlist": 1024}
F = TypeVar("F", bound=Callable[..., Any])
_LITE_CLIENTS: Counter[str] = Counter()     # open clients per milvus-lite file in this process
_LITE_LOCK = threading.Lock()


def _milvus_errors(method: F) -> F:
    """Report a failing Milvus call as one line naming the store, not a gRPC traceback."""
    @functools.wraps(method)
    def wrapper(self: MilvusVectors, *args: Any, **kwargs: Any) -> Any:
        from pymilvus.exceptions import MilvusException

        try:
            return method(self, *args, **kwargs)
        except MilvusException as exc:
            raise SearcherError(f"Milvus at {self.config.uri}, collection {self.collection}: "
                                f"{method.__name__} failed ({_first_line(exc)})") from None
    return wrapper  # type: ignore[return-value]


def _client(config: VectorStoreConfig, token: str | None):
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise SearcherError("this index keeps its vectors in Milvus, which needs pymilvus: "
                            "pip install 'searcher[milvus]'") from None
    kwargs: dict[str, Any] = {}
    token = token or os.environ.get(TOKEN_ENV)
    if token:
        kwargs["token"] = token
    if config.ca_pem:
        kwargs.update(secure=True, server_pem_path=config.ca_pem)
    if config.server_name:
        kwargs["server_name"] = config.server_name
    if config.lite:
        Path(config.uri or "").parent.mkdir(parents=True, exist_ok=True)
    for name in ("pymilvus", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)   # failures are reported as SearcherError
    try:
        if not config.lite:
            return MilvusClient(config.uri or "", **kwargs)
        with _LITE_LOCK:    # not while the last client of the file stops its server
            client = MilvusClient(config.uri or "", **kwargs)
            _LITE_CLIENTS[config.uri or ""] += 1
            return client
    except Exception as exc:  # noqa: BLE001 - connection, auth, TLS and lite start-up failures alike
        if config.lite:
            raise SearcherError(f"--milvus-uri {config.uri}: cannot open the milvus-lite file ({_first_line(exc)}); "
                                "milvus-lite serves one process at a time — stop the other process using it, "
                                "or use a Milvus server for concurrent indexing and searching") from None
        raise SearcherError(f"--milvus-uri {config.uri}: cannot connect to Milvus ({_first_line(exc)}); check "
                            f"the address, the token (--milvus-token or ${TOKEN_ENV}) and TLS options") from None


def _close_client(client: Any, config: VectorStoreConfig) -> None:
    """Close a client. The last one on a milvus-lite file also stops the file's in-process server,
    which unlocks the file: milvus-lite serves one process at a time, and another process (a
    ``searcher`` command, say) may then open it."""
    client.close()
    if not config.lite:
        return
    from milvus_lite.server_manager import server_manager_instance

    with _LITE_LOCK:
        _LITE_CLIENTS[config.uri or ""] -= 1
        if _LITE_CLIENTS[config.uri or ""] <= 0:
            del _LITE_CLIENTS[config.uri or ""]
            server_manager_instance.release_server(config.uri or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class MilvusVectors:
    """A Milvus collection of chunk vectors, searched by inner product (cosine on unit vectors).

    Opened for reading, ``add``/``remove`` do nothing: the collection is shared, and only the
    writer (holding the index's lock) changes it, so a reader never puts back a vector that a
    concurrent writer has just deleted. ``save`` records the generation and ends the writing."""

    kind = "milvus"

    def __init__(self, client: Any, config: VectorStoreConfig, dim: int, writing: bool):
        self.client, self.config, self.dim, self.writing = client, config, dim, writing
        self.collection = config.collection or ""
        self.state = f"{self.collection}_state"

    @property
    def description(self) -> str:
        return f"Milvus {self.config.index_type} on collection {self.collection} at {self.config.uri}"

    # ---- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, config: VectorStoreConfig, dim: int, generation: int, pruned: int, *, writing: bool,
             token: str | None = None) -> tuple[MilvusVectors, int]:
        """The collection and the generation to catch up from (see ``vectorstores.open_vectors``)."""
        store = cls(_client(config, token), config, dim, writing)
        return store, store._start(generation, pruned)

    @_milvus_errors
    def _start(self, generation: int, pruned: int) -> int:
        exists = self.client.has_collection(self.collection) and self.client.has_collection(self.state)
        if not exists and not self.writing:
            raise SearcherError(f"Milvus at {self.config.uri} has no collection {self.collection}: run "
                                "`searcher index` on this index to rebuild it from searcher.db")
        if exists:
            self._check_dim()
            for name in (self.collection, self.state):
                self.client.load_collection(name)   # a no-op when loaded; milvus-lite releases on close
        if not self.writing:
            return generation
        saved = self._saved_generation() if exists else None
        if saved is None or saved < pruned or saved > generation:
            self.reset()
            return -1
        return saved

    @classmethod
    def create(cls, config: VectorStoreConfig, dim: int, token: str | None = None) -> MilvusVectors:
        store = cls(_client(config, token), config, dim, writing=True)
        _milvus_errors(cls.reset)(store)
        return store

    def _check_dim(self) -> None:
        fields = self.client.describe_collection(self.collection).get("fields", [])
        dims = [int(f.get("params", {}).get("dim", 0)) for f in fields if f.get("name") == "vector"]
        if dims != [self.dim]:
            raise SearcherError(f"Milvus collection {self.collection} at {self.config.uri} holds vectors of "
                                f"dimension {dims[0] if dims else '?'}, not {self.dim}: it belongs to another "
                                "index; migrate this index to a new --milvus-collection")

    def _saved_generation(self) -> int | None:
        rows = self.client.get(self.state, ids=[STATE_ROW], output_fields=["gen"], consistency_level="Strong")
        return int(rows[0]["gen"]) if rows else None

    def reset(self) -> None:
        """Drop and recreate both collections, empty (the writer then rebuilds from SQLite)."""
        from pymilvus import DataType

        drop_collections(self.config, client=self.client)
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = self.client.prepare_index_params()
        index_type = self.config.index_type or "FLAT"
        extra = {"HNSW": HNSW_PARAMS, "IVF_FLAT": IVF_PARAMS}.get(index_type, {})
        params.add_index("vector", index_type=index_type, metric_type="IP", params=extra)
        self.client.create_collection(self.collection, schema=schema, index_params=params,
                                      consistency_level="Session")
        state = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        state.add_field("id", DataType.INT64, is_primary=True)
        state.add_field("gen", DataType.INT64)
        state.add_field("vector", DataType.FLOAT_VECTOR, dim=2)   # Milvus requires a vector field
        state_params = self.client.prepare_index_params()
        state_params.add_index("vector", index_type="FLAT", metric_type="L2")
        self.client.create_collection(self.state, schema=state, index_params=state_params,
                                      consistency_level="Strong")

    # ---- the vector-store interface -------------------------------------------------------------
    @_milvus_errors
    def __len__(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @_milvus_errors
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not self.writing or not len(ids):
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        for part in _batches(len(ids), WRITE_ROWS):
            self.client.upsert(self.collection, [{"id": int(i), "vector": v.tolist()}
                                                 for i, v in zip(ids[part], vectors[part])])

    @_milvus_errors
    def remove(self, ids: np.ndarray) -> None:
        if not self.writing or not len(ids):
            return
        for part in _batches(len(ids), WRITE_ROWS):
            self.client.delete(self.collection, ids=[int(i) for i in ids[part]])

    @_milvus_errors
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the ``k`` nearest vectors (at most ``MAX_TOPK``), restricted to
        ``allowed`` ids when given: one search per part of the allowed ids, merged."""
        vec = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        k = min(k, MAX_TOPK)
        if allowed is None:
            parts: list[str] = [""]
        else:
            allowed = np.asarray(allowed, dtype=np.int64)
            parts = [f"id in [{','.join(map(str, allowed[p].tolist()))}]" for p in _batches(len(allowed), FILTER_IDS)]
        found: list[tuple[float, int]] = []
        for expr in parts:
            res = self.client.search(self.collection, data=[vec], limit=k, filter=expr, output_fields=[],
                                     search_params={"metric_type": "IP", "params": self._search_params(k)})
            found += [(float(h["distance"]), int(h["id"])) for h in res[0]]
        found.sort(key=lambda x: (-x[0], x[1]))
        found = found[:k]
        return (np.array([s for s, _ in found], dtype=np.float32), np.array([i for _, i in found], dtype=np.int64))

    def _search_params(self, k: int) -> dict[str, int]:
        if self.config.index_type == "HNSW":
            return {"ef": max(k, 64)}
        if self.config.index_type == "IVF_FLAT":
            return {"nprobe": 32}
        return {}

    @_milvus_errors
    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these ids, one row each; a zero row for an id Milvus does not hold
        (a chunk whose vector a crashed writer had not written yet: the next index run adds it)."""
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = self.client.get(self.collection, ids=[int(i) for i in ids], output_fields=["vector"])
        by_id = {int(r["id"]): r["vector"] for r in rows}
        missing = np.zeros(self.dim, dtype=np.float32)
        return np.array([by_id.get(int(i), missing) for i in ids], dtype=np.float32)

    def maintain(self, settings: Any, source: Any, queries: Any, progress: Any = None) -> bool:
        """Milvus builds and tunes its own index (``index_type``): nothing to switch here."""
        return False

    @_milvus_errors
    def save(self, folder: Path, generation: int) -> None:
        """Record that the collection reflects ``generation`` (the folder holds nothing of Milvus)."""
        if self.writing:
            self.client.upsert(self.state, [{"id": STATE_ROW, "gen": int(generation), "vector": [0.0, 0.0]}])
            if not self.config.lite:
                self.client.flush(self.collection)
                self.client.flush(self.state)
        self.writing = False

    def close(self) -> None:
        """Release the connection (and a milvus-lite file no other store here has open)."""
        if self.client is not None:
            _close_client(self.client, self.config)
            self.client = None


def drop_collections(config: VectorStoreConfig, token: str | None = None, *, client: Any = None) -> None:
    """Delete an index's collections from Milvus (its state first: a half-dropped store is rebuilt)."""
    own = client is None
    client = client or _client(config, token)
    try:
        for name in (f"{config.collection}_state", config.collection or ""):
            if client.has_collection(name):
                client.drop_collection(name)
    finally:
        if own:
            _close_client(client, config)
