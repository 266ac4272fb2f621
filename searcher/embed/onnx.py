"""The light query encoder: ONNX Runtime, the model's tokenizer.json and numpy — no torch.

A cold ``searcher search`` used to spend seconds importing torch and sentence-transformers and
loading the model before it looked at the index. At index time the index's model is exported
once into the index folder (``export``): one ONNX graph from token ids to the sentence vector, and
the tokenizer set to truncate as the model does. The export is kept only if its vectors match the
torch ones on a sample of texts (cosine ≥ ``MIN_COSINE``); the manifest records the outcome
(``QueryEncoderInfo``), and an index without a usable export is searched with the torch encoder.

Only numpy is imported at module level; onnxruntime and tokenizers load with the first encoder.
"""
from __future__ import annotations

import errno
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import SearcherError
from .base import CHECK_TEXTS, MIN_COSINE, ONNX_BATCH, Exportable, blind_share

ONNX_FILE = "encoder.onnx"
TOKENIZER_FILE = "encoder.tokenizer.json"
# intra-op threads for one query: 2 embed a short query in 1.8 ms against 1 thread's 2.5 ms, a full
# window in 25.5 against 34.2 ms (docs/benchmarks.md, cold_query); the searches come after, not beside
QUERY_THREADS = min(2, os.cpu_count() or 1)
SAMPLE_CHUNKS = 48            # stored chunks added to the built-in texts for the check

@dataclass(frozen=True)
class QueryEncoderInfo:
    """What the manifest records about the index's query encoder (see docs/format.md)."""

    kind: Literal["onnx", "torch", "static"]   # static: a table lookup (embed.static), nothing exported
    reason: str = ""                 # torch: why there is no ONNX encoder
    unk_token_id: int | None = None
    min_cosine: float | None = None  # onnx: the worst cosine to the torch vectors in the check
    texts_checked: int = 0
    exporter: str = ""

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "torch":
            return {"kind": "torch", "reason": self.reason}
        if self.kind == "static":
            return {"kind": "static"}
        return {"kind": "onnx", "file": ONNX_FILE, "tokenizer": TOKENIZER_FILE, "unk_token_id": self.unk_token_id,
                "min_cosine": self.min_cosine, "texts_checked": self.texts_checked, "exporter": self.exporter}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueryEncoderInfo:
        return cls(kind=d["kind"], reason=d.get("reason", ""), unk_token_id=d.get("unk_token_id"),
                   min_cosine=d.get("min_cosine"), texts_checked=d.get("texts_checked", 0),
                   exporter=d.get("exporter", ""))


class OnnxQueryEncoder:
    """Embeds with the exported graph: the same vectors, unknown-token share and token spans as
    ``Encoder``, with neither torch nor transformers. Searches embed their query with it; once an
    index holds a checked export, its later runs embed and chunk with it too (a run that changes
    one file then starts in a second, not in the half minute torch takes to load)."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, dim: int, unk_token_id: int | None,
                 threads: int = QUERY_THREADS):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # unknown_fraction counts every token, as Encoder does; a second copy keeps this thread-safe
        self._counter = Tokenizer.from_file(str(tokenizer_path))
        self._counter.no_truncation()
        self._spanner = Tokenizer.from_file(str(tokenizer_path))   # token_spans runs in the indexer's reader thread
        self._spanner.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._unk = unk_token_id
        self.dim = dim

    @classmethod
    def open(cls, folder: Path, info: QueryEncoderInfo, dim: int, threads: int = QUERY_THREADS) -> OnnxQueryEncoder:
        return cls(folder / ONNX_FILE, folder / TOKENIZER_FILE, dim, info.unk_token_id, threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text: longest first, in padded calls of at
        most ``ONNX_BATCH`` texts (a lone query runs unpadded)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), ONNX_BATCH):
            rows = order[start:start + ONNX_BATCH]
            encodings = self._tokenizer.encode_batch([texts[r] for r in rows])
            feed = {name: np.zeros((len(rows), max(len(e.ids) for e in encodings)), dtype=np.int64)
                    for name in ("input_ids", "attention_mask", "token_type_ids")}
            for i, e in enumerate(encodings):   # padding is masked out: its ids do not matter
                feed["input_ids"][i, :len(e.ids)] = e.ids
                feed["attention_mask"][i, :len(e.ids)] = e.attention_mask
                feed["token_type_ids"][i, :len(e.ids)] = e.type_ids
            out[rows] = self._session.run(None, {name: feed[name] for name in self._inputs})[0]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of every token of each text (special tokens excluded), as ``Encoder``'s."""
        return [list(e.offsets) for e in self._spanner.encode_batch(list(texts), add_special_tokens=False)]

    def unknown_fraction(self, text: str) -> float:
        enc = self._counter.encode(text, add_special_tokens=False)
        return blind_share(enc.ids, enc.tokens, self._unk)


def exported(folder: Path) -> bool:
    """Whether both files of an export are in ``folder`` (whether they load is another matter)."""
    return (folder / ONNX_FILE).is_file() and (folder / TOKENIZER_FILE).is_file()


def unavailable(folder: Path, info: QueryEncoderInfo | None) -> str | None:
    """Why searches of the index in ``folder`` need torch, or None when the ONNX encoder is usable."""
    if info is None:
        return "the index has no ONNX export yet; its next `searcher index` run exports the model"
    if info.kind == "torch":
        return info.reason
    if not exported(folder):
        return f"{ONNX_FILE} or {TOKENIZER_FILE} is missing from the index folder"
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install onnxruntime)"
    return None


def load_query_encoder(folder: Path, info: QueryEncoderInfo, dim: int, threads: int = QUERY_THREADS) -> OnnxQueryEncoder:
    """One loaded encoder per process, index folder and thread count (reloaded if the file is
    replaced). Queries run on ``QUERY_THREADS``; an index run passes every core."""
    try:
        return _load(str(folder), info, dim, (folder / ONNX_FILE).stat().st_mtime_ns, threads)
    except Exception as exc:  # noqa: BLE001 - a damaged file: say which and how to get past it
        raise SearcherError(f"{folder / ONNX_FILE} or {TOKENIZER_FILE}: cannot load them ({_first_line(exc)}); "
                            "delete them: searches then use torch, and the next `searcher index` run exports them "
                            "again") from None


@lru_cache(maxsize=8)
def _load(folder: str, info: QueryEncoderInfo, dim: int, stamp: int, threads: int) -> OnnxQueryEncoder:
    return OnnxQueryEncoder.open(Path(folder), info, dim, threads)


def export(encoder: Exportable, folder: Path, sample: Sequence[str]) -> QueryEncoderInfo:
    """Export ``encoder`` into ``folder`` and check it against torch on the built-in texts plus
    ``sample``; the files are put in place only when the check passes. Never raises for a model
    that cannot be exported: the returned record then says why, and search keeps using torch. A
    failure of the machine rather than the model (a full disk, ``transient``) raises its OSError,
    so that it is not recorded and the next run exports again."""
    pid = os.getpid()
    tmp_onnx, tmp_tok = folder / f".{ONNX_FILE}.{pid}.tmp", folder / f".{TOKENIZER_FILE}.{pid}.tmp"
    texts = [*CHECK_TEXTS, *sample]
    if encoder.precision != "float32":
        return QueryEncoderInfo("torch", f"the index's encoder computes in {encoder.precision}, which the ONNX "
                                         "export does not reproduce; queries use that same torch encoder")
    try:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return QueryEncoderInfo("torch", "onnxruntime is not installed (pip install onnxruntime)")
        try:
            tmp_onnx.write_bytes(encoder.onnx_model())
        except Exception as exc:  # any exporter failure but the machine's means "use torch", with its reason
            if transient(exc):
                raise
            return QueryEncoderInfo("torch", f"the model could not be exported to ONNX: {_first_line(exc)}")
        tmp_tok.write_text(encoder.tokenizer_json(), encoding="utf-8")
        light = OnnxQueryEncoder(tmp_onnx, tmp_tok, encoder.dim, encoder.unk_token_id)
        cosine = float(np.min(np.sum(encoder.encode_with_torch(texts) * light.encode(texts), axis=1)))
        if cosine < MIN_COSINE:
            return QueryEncoderInfo("torch", f"the ONNX vectors differ from torch's (min cosine {cosine:.7f} < "
                                             f"{MIN_COSINE} on {len(texts)} texts)")
        if any(light.unknown_fraction(t) != encoder.unknown_fraction(t) for t in texts):
            return QueryEncoderInfo("torch", "the exported tokenizer reads some texts differently from the model's")
        for tmp, name in ((tmp_tok, TOKENIZER_FILE), (tmp_onnx, ONNX_FILE)):
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, folder / name)
        return QueryEncoderInfo("onnx", unk_token_id=encoder.unk_token_id, min_cosine=round(cosine, 9),
                                texts_checked=len(texts), exporter=encoder.exporter)
    finally:
        tmp_onnx.unlink(missing_ok=True)
        tmp_tok.unlink(missing_ok=True)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the machine that a later run may not meet: no space, no
    permission, an I/O error, too many open files, no memory."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in _TRANSIENT)


_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EMFILE,
              errno.ENFILE, errno.ENOMEM}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
