"""The index manifest: what built an index, so that every later run and search uses the same.

``manifest.json`` is written atomically when an index is created, and again only when ``--ann`` or
``--memory-budget`` change the vector structure wanted; an index folder without it is not an index.
See docs/format.md.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chunking import ChunkingConfig
from .embedding import ModelInfo
from .errors import SearcherError
from .vectors import AnnSettings

FORMAT = "searcher-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class IndexConfig:
    model: ModelInfo
    chunking: ChunkingConfig
    vectors: AnnSettings = AnnSettings()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": self.model.to_dict(),
            "chunking": {"max_tokens": self.chunking.max_tokens,
                         "overlap_tokens": self.chunking.overlap_tokens},
            "vectors": {"dtype": self.vectors.dtype, "metric": "cosine", "ann": self.vectors.ann,
                        "memory_budget": self.vectors.memory_budget},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexConfig:
        v = d.get("vectors", {})   # manifests written before --ann and --vector-dtype: float32, auto
        return cls(ModelInfo(**d["model"]), ChunkingConfig(**d["chunking"]),
                   AnnSettings(v.get("ann", "auto"), v.get("dtype", "float32"), v.get("memory_budget")))


def read_manifest(folder: Path) -> IndexConfig | None:
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
    return IndexConfig.from_dict(data)


def write_manifest(folder: Path, config: IndexConfig) -> None:
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
