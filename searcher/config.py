"""The index manifest: what built an index, so that every later run and search uses the same.

``manifest.json`` is written atomically when an index is created; an index folder without it is
not an index. Later changes rewrite one entry, keeping the rest: the record of the query
encoder's ONNX export, ``vectors`` when ``--ann`` or ``--memory-budget`` change the vector
structure wanted, and the vector store after ``migrate``. See docs/format.md.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .embed.base import ModelInfo
from .embed.encoder import PRECISIONS
from .embed.images import ImageModelInfo
from .embed.onnx import QueryEncoderInfo
from .errors import SearcherError
from .ingest.chunking import ChunkingConfig
from .store.faiss_index import AnnSettings
from .store.protocol import VectorStoreConfig

FORMAT = "searcher-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class IndexConfig:
    model: ModelInfo
    chunking: ChunkingConfig
    query_encoder: QueryEncoderInfo | None = None   # None: made before ONNX export, not yet exported
    vector_store: VectorStoreConfig = VectorStoreConfig()
    # the encoder's arithmetic (embedding.PRECISIONS): vectors of an int8 and a float32 encoder
    # differ slightly, so an index keeps the one it was built with, for its chunks and its queries
    precision: str = "float32"
    vectors: AnnSettings = AnnSettings()
    image_model: ImageModelInfo | None = None      # None: the index reads no images (docs/images.md)

    def to_dict(self) -> dict[str, Any]:
        extra = {"query_encoder": self.query_encoder.to_dict()} if self.query_encoder else {}
        return {
            "format": FORMAT, "version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": self.model.to_dict(),
            "chunking": {"max_tokens": self.chunking.max_tokens,
                         "overlap_tokens": self.chunking.overlap_tokens},
            "vectors": vectors_entry(self.vectors),
            **extra,
            "vector_store": self.vector_store.to_dict(),
            "encoder": {"precision": self.precision},
            **({"image_model": self.image_model.to_dict()} if self.image_model else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexConfig:
        precision = d.get("encoder", {}).get("precision", "float32")
        if precision not in PRECISIONS:
            raise SearcherError(f"manifest: encoder precision '{precision}' is not known to this searcher "
                                f"({', '.join(PRECISIONS)}); rebuild the index")
        qe = d.get("query_encoder")
        v = d.get("vectors", {})   # written before --ann and --vector-dtype: float32, auto
        return cls(ModelInfo(**d["model"]), ChunkingConfig(**d["chunking"]),
                   query_encoder=QueryEncoderInfo.from_dict(qe) if qe else None,
                   vector_store=VectorStoreConfig.from_dict(d.get("vector_store")),   # absent: before Milvus
                   precision=precision,
                   vectors=AnnSettings(v.get("ann", "auto"), v.get("dtype", "float32"), v.get("memory_budget")),
                   image_model=ImageModelInfo.from_dict(d["image_model"]) if d.get("image_model") else None)


def vectors_entry(v: AnnSettings) -> dict[str, Any]:
    """The manifest's ``vectors`` entry for these settings."""
    return {"dtype": v.dtype, "metric": "cosine", "ann": v.ann, "memory_budget": v.memory_budget}


def read_manifest(folder: Path) -> IndexConfig | None:
    data = _read(folder)
    return IndexConfig.from_dict(data) if data is not None else None


def _read(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SearcherError(f"{path}: unreadable manifest ({exc}); rebuild the index into a new folder") from None
    if data.get("format") != FORMAT:
        raise SearcherError(f"{path}: not a searcher index manifest")
    if data.get("version") != FORMAT_VERSION:
        raise SearcherError(f"{path}: index format version {data.get('version')} is not supported by this "
                            f"searcher (reads version {FORMAT_VERSION}); rebuild the index")
    return data


def write_manifest(folder: Path, config: IndexConfig) -> None:
    _write(folder, config.to_dict())


def update_manifest(folder: Path, key: str, value: dict[str, Any]) -> IndexConfig:
    """Replace one entry of an existing manifest (``query_encoder`` after the ONNX export,
    ``vector_store`` after a migration), keeping everything else, ``created`` included."""
    data = _read(folder)
    if data is None:
        raise SearcherError(f"no index at {folder}")
    data[key] = value
    _write(folder, data)
    return IndexConfig.from_dict(data)


def _write(folder: Path, data: dict[str, Any]) -> None:
    """Atomically: a temporary file, fsynced, renamed over the manifest."""
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
