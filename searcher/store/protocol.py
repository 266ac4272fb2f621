"""What a vector store is (``VectorStore``) and which one an index uses (``VectorStoreConfig``).

The FAISS and Milvus stores both implement the protocol and both read the config; the factory that
picks one is ``store/vectors.py``.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from ..errors import SearcherError

StoreKind = Literal["faiss", "milvus"]
MILVUS_INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX")


class VectorStore(Protocol):
    """What the write and read paths need of a vector store (``VectorIndex`` is the FAISS one)."""

    def __len__(self) -> int: ...
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, query: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def reconstruct(self, ids: Sequence[int]) -> np.ndarray: ...
    def maintain(self, settings: Any, source: Any, queries: Any, progress: Any = None) -> bool: ...
    def save(self, folder: Path, generation: int) -> Any: ...
    def close(self) -> None: ...   # release connections and files held outside the object


@dataclass(frozen=True)
class VectorStoreConfig:
    """The vector store an index uses, as the manifest records it. Never holds a secret: the Milvus
    token comes from ``--milvus-token`` / $SEARCHER_MILVUS_TOKEN each time."""

    kind: StoreKind = "faiss"
    uri: str | None = None           # milvus: a milvus-lite file, http(s)://host:19530, or a cluster's proxy
    collection: str | None = None    # milvus: the collection holding this index's vectors
    index_type: str | None = None    # milvus: FLAT (exact), HNSW, IVF_FLAT or AUTOINDEX
    ca_pem: str | None = None        # milvus TLS: PEM file of the server's certificate or its CA
    server_name: str | None = None   # milvus TLS: the name the server's certificate was issued for

    @property
    def remote(self) -> bool:
        """Whether other processes may write the store's contents (readers must not catch it up)."""
        return self.kind != "faiss"

    @property
    def lite(self) -> bool:
        return self.kind == "milvus" and not _is_address(self.uri or "")

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> VectorStoreConfig:
        return cls(**d) if d else cls()

    def describe(self) -> str:
        if self.kind == "faiss":
            return "faiss (local file in the index folder)"
        return f"milvus collection {self.collection} at {self.uri} ({self.index_type})"


def _is_address(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


def milvus_config(uri: str | None, collection: str | None = None, index_type: str | None = None,
                  ca_pem: str | None = None, server_name: str | None = None) -> VectorStoreConfig:
    """Check and complete the Milvus options of a new index (or of a migration to Milvus).

    A milvus-lite file is recorded as an absolute path; the collection name defaults to a fresh
    ``searcher_<12 hex>`` so that many indexes can share one Milvus; the index type defaults to exact
    FLAT on milvus-lite and HNSW on a server."""
    if not uri:
        raise SearcherError("--vector-store milvus needs --milvus-uri: a milvus-lite file such as "
                            "vectors.db, or a server address such as http://localhost:19530")
    if not _is_address(uri):
        path = Path(uri).expanduser()
        if path.suffix != ".db":
            raise SearcherError(f"--milvus-uri {uri}: a milvus-lite file name must end in .db "
                                "(or give a server address such as http://localhost:19530)")
        uri = str(path.resolve())
    if collection is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", collection):
        raise SearcherError(f"--milvus-collection {collection!r}: use letters, digits and '_' only, "
                            "starting with a letter or '_'")
    index_type = (index_type or ("HNSW" if _is_address(uri) else "FLAT")).upper()
    if index_type not in MILVUS_INDEX_TYPES:
        raise SearcherError(f"--milvus-index {index_type}: choose one of {', '.join(MILVUS_INDEX_TYPES)}")
    if ca_pem is not None:
        if not Path(ca_pem).expanduser().is_file():
            raise SearcherError(f"--milvus-ca {ca_pem}: no such file (give the PEM file of the server's "
                                "certificate or of its certificate authority)")
        ca_pem = str(Path(ca_pem).expanduser().resolve())
    return VectorStoreConfig("milvus", uri, collection or f"searcher_{uuid.uuid4().hex[:12]}", index_type,
                             ca_pem, server_name)
