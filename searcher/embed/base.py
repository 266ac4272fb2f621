"""What the indexing encoder, the ONNX query encoder and the Ray workers share: the texts and bound
of the export check, the unknown-token share, the record of a model's identity, and the user cache
where derived models (ONNX exports, static tables) are made once per machine.

Kept apart so that each encoder imports it and none imports another.
"""
from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

CACHE_ENV = "SEARCHER_CACHE"
MIN_COSINE = 1 - 1e-5
# texts per ONNX Runtime call, at most: with the texts sorted by length, 4-8 run as fast as 32 here
# (cranfield: 54 chunks/s at 8 and 52 at 32) for far less memory (peak RSS 1.08 against 1.78 GB)
ONNX_BATCH = 8
_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")

# Texts every check covers besides the index's own chunks: a query, code, accents, CJK (unknown
# to English vocabularies), symbols, and a text longer than any model's window (truncation).
CHECK_TEXTS = (
    "how do I rotate the logs",
    "def retry(fn, attempts=3):\n    for i in range(attempts):\n        return fn()",
    "Café, naïve résumé — Ünïcödé façade; Øresund straße",
    "数据库备份什么时候运行",
    "x",
    "!!! ??? ### 12345 0.5e-3 https://example.org/a?b=c",
    " ".join(f"sentence {i} of a very long document about tokenization and truncation limits." for i in range(200)),
)


def cache_root() -> Path:
    """The user cache folder for derived models (never the repository, never an index):
    ``$SEARCHER_CACHE``, else ``$XDG_CACHE_HOME/searcher``, else ``~/.cache/searcher``."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "searcher"


def made_once(folder: Path, ready: Callable[[Path], bool], make: Callable[[], object]) -> None:
    """Call ``make`` unless ``folder`` is ``ready``, one process at a time: the others wait on a lock
    file beside the folder, then find it made. ``make`` builds beside ``folder`` and renames."""
    if ready(folder):
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready(folder):
            make()


def blind_share(ids: Sequence[int], pieces: Sequence[str | None], unk: int | None) -> float:
    """Share of a text's tokens the model cannot read: its tokenizer's unknown token, or raw
    byte-fallback pieces (``<0xE4>``) of SentencePiece vocabularies; 1.0 for no tokens."""
    if not ids:
        return 1.0
    blind = sum(1 for i, p in zip(ids, pieces) if i == unk or _BYTE_PIECE.match(p or ""))
    return blind / len(ids)


@dataclass(frozen=True)
class ModelInfo:
    """What an index records about the model that built it; vectors from another model are garbage."""

    name: str
    dim: int
    max_seq_length: int
    fingerprint: str             # sha256 over the weights, in parameter-name order

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "max_seq_length": self.max_seq_length,
                "fingerprint": self.fingerprint}


class Exportable(Protocol):
    """What ``onnx.export`` needs of an indexing encoder: its weights as an ONNX graph, its tokenizer,
    and its torch vectors to check the graph against."""

    dim: int
    precision: str
    unk_token_id: int | None

    def onnx_model(self) -> bytes: ...
    def tokenizer_json(self) -> str: ...
    def encode_with_torch(self, texts: Sequence[str]) -> np.ndarray: ...


class TextEncoder(Protocol):
    """What the write path needs of an encoder: token spans to cut chunks by, and vectors."""

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...
