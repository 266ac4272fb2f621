"""The light encoder: ONNX Runtime, the model's tokenizer.json and numpy — no torch.

A cold ``searcher search`` used to spend seconds importing torch and sentence-transformers and
loading the model before it looked at the index. The model is therefore exported once per machine
into the user cache (``export_folder``: keyed by the weights' fingerprint and the precision): one
ONNX graph from token ids to the sentence vector, the tokenizer set to truncate as the model does,
and ``export.json``. The export is kept only if its vectors match the torch ones on a sample of
texts (cosine ≥ ``MIN_COSINE``); it is built beside its final name and renamed into place, one
process at a time. Every index of that model shares it: the manifest records the outcome and the
.onnx file's sha256 (``QueryEncoderInfo``), and an index without a usable export is searched with
the torch encoder. ``sources/`` maps a model folder's content to its fingerprint, so that a new
index of a model exported before starts without torch. Indexes made before the shared cache keep
their own ``encoder.onnx`` and are read as they are.

Only numpy is imported at module level; onnxruntime and tokenizers load with the first encoder.
"""
from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import SearcherError
from .base import CHECK_TEXTS, MIN_COSINE, ONNX_BATCH, Exportable, ModelInfo, blind_share, cache_root, made_once

ONNX_FILE = "encoder.onnx"
TOKENIZER_FILE = "encoder.tokenizer.json"
RECORD = "export.json"       # in a shared export's folder: what it is, and how it was checked
EXPORTS = "onnx"             # the user cache's folder of shared exports
EXPORT_VERSION = 1           # part of the key: a change to how exports are made makes new ones
# a model folder's files that are not what sentence-transformers loads (other frameworks' copies)
_OTHER_FORMATS = {"onnx", "openvino"}
_OTHER_SUFFIXES = {".onnx", ".h5", ".msgpack", ".ot", ".md"}
# intra-op threads for one query: 2 embed a short query in 1.8 ms against 1 thread's 2.5 ms, a full
# window in 25.5 against 34.2 ms (docs/benchmarks.md, cold_query); the searches come after, not beside
QUERY_THREADS = min(2, os.cpu_count() or 1)
SAMPLE_CHUNKS = 48            # stored chunks added to the built-in texts for the check
# A shared export is usually made before its first index holds any chunk: these stand in for them
# (prose of several lengths, a title, a list, a table row, mixed case and digits, German, emoji).
EXPORT_TEXTS = (
    "Backups run every Sunday at 02:00 and keep eight weekly copies in the offsite bucket.",
    "# Sourdough bread\n\nMix flour, water and starter. Let the dough rise overnight, then bake it.",
    "The boundary layer separates from the wing surface when the adverse pressure gradient grows too large, "
    "and the flow downstream becomes turbulent; the experiments measured the transition point at Mach 0.8.",
    "Myeloid-derived suppressor cells (MDSC) were expanded in the bone marrow of 24 patients (p < 0.01).",
    "- install the package\n- run `searcher index ~/notes`\n- search: searcher search 'log rotation'",
    "| name | size | modified |\n| report.pdf | 2.4 MB | 2024-03-01 |",
    "WHY DOES THE SERVER RETURN HTTP 503 AFTER 30s? see ticket #4711",
    "Die Sicherung läuft jeden Sonntag; danach wird die Datenbank geprüft.",
    "great results 🎉🎉 thanks everyone!",
    "\n\n   \t  ",
)

@dataclass(frozen=True)
class QueryEncoderInfo:
    """What the manifest records about the index's query encoder (see docs/format.md)."""

    kind: Literal["onnx", "torch", "static"]   # static: a table lookup (embed.static), nothing exported
    reason: str = ""                 # torch: why there is no ONNX encoder
    unk_token_id: int | None = None
    min_cosine: float | None = None  # onnx: the worst cosine to the torch vectors in the check
    texts_checked: int = 0
    exporter: str = ""
    # onnx: the sha256 of the shared export's .onnx file in the user cache; "" for an index made
    # before the shared cache, whose own folder holds the export (``in_folder``)
    sha256: str = ""

    @property
    def in_folder(self) -> bool:
        return self.kind == "onnx" and not self.sha256

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "torch":
            return {"kind": "torch", "reason": self.reason}
        if self.kind == "static":
            return {"kind": "static"}
        where = {"file": ONNX_FILE, "tokenizer": TOKENIZER_FILE} if self.in_folder else {"sha256": self.sha256}
        return {"kind": "onnx", **where, "unk_token_id": self.unk_token_id, "min_cosine": self.min_cosine,
                "texts_checked": self.texts_checked, "exporter": self.exporter}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueryEncoderInfo:
        return cls(kind=d["kind"], reason=d.get("reason", ""), unk_token_id=d.get("unk_token_id"),
                   min_cosine=d.get("min_cosine"), texts_checked=d.get("texts_checked", 0),
                   exporter=d.get("exporter", ""), sha256=d.get("sha256", ""))


@dataclass(frozen=True)
class SharedExport:
    """A checked export in the user cache, as its ``export.json`` describes it: enough to start a
    new index of the model (dimension, window, special tokens, fingerprint) without torch."""

    folder: Path
    model: ModelInfo             # as first exported; the name is the one used then
    precision: str
    special_tokens: int
    info: QueryEncoderInfo
    size: int                    # of the .onnx file: a truncated copy is seen without hashing it
    tokenizer_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": EXPORT_VERSION, "model": self.model.to_dict(), "precision": self.precision,
                "special_tokens": self.special_tokens, "onnx_bytes": self.size,
                "tokenizer_sha256": self.tokenizer_sha256, "query_encoder": self.info.to_dict()}

    @classmethod
    def read(cls, folder: Path) -> SharedExport | None:
        """The export in ``folder``, or None when it is missing, unreadable or truncated."""
        try:
            d = json.loads((folder / RECORD).read_text(encoding="utf-8"))
            found = cls(folder, ModelInfo(**d["model"]), d["precision"], int(d["special_tokens"]),
                        QueryEncoderInfo.from_dict(d["query_encoder"]), int(d["onnx_bytes"]), d["tokenizer_sha256"])
            whole = (folder / ONNX_FILE).stat().st_size == found.size and (folder / TOKENIZER_FILE).is_file()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return found if whole and found.info.kind == "onnx" and d.get("version") == EXPORT_VERSION else None

    def intact(self) -> bool:
        """Whether both files still have the bytes that were checked (hashed once per process and
        file version: index runs only)."""
        try:
            return all(_hashed(str(path), path.stat().st_size, path.stat().st_mtime_ns) == sha
                       for path, sha in ((self.folder / ONNX_FILE, self.info.sha256),
                                         (self.folder / TOKENIZER_FILE, self.tokenizer_sha256)))
        except OSError:
            return False


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
        # idle threads sleep rather than spin for work: 33% less CPU per chunk indexed here (12.9
        # against 19.2 CPU-s for 300 abstracts, load 5), the wall time no worse (docs/benchmarks.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._unk = unk_token_id
        self.dim = dim
        self.export: SharedExport | None = None    # set by ``load_export``: the model's identity
        self.name = ""

    @classmethod
    def open(cls, folder: Path, info: QueryEncoderInfo, dim: int, threads: int = QUERY_THREADS) -> OnnxQueryEncoder:
        return cls(folder / ONNX_FILE, folder / TOKENIZER_FILE, dim, info.unk_token_id, threads)

    # ---- what a new index needs of its model, from a shared export's record (no torch) ----------
    @property
    def precision(self) -> str:
        return self._identity.precision

    @property
    def max_chunk_tokens(self) -> int:
        return self._identity.model.max_seq_length - self._identity.special_tokens

    @property
    def info(self) -> ModelInfo:
        m = self._identity.model
        return ModelInfo(self.name or m.name, m.dim, m.max_seq_length, m.fingerprint)

    @property
    def _identity(self) -> SharedExport:
        if self.export is None:
            raise TypeError("an index's own export carries no model record")
        return self.export

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


def unavailable(folder: Path, info: QueryEncoderInfo | None, model: ModelInfo, precision: str) -> str | None:
    """Why searches of the index in ``folder`` need torch, or None when the ONNX encoder is usable."""
    if info is not None and info.kind == "torch":
        return info.reason
    if info is not None and info.in_folder:
        if not exported(folder):
            return f"{ONNX_FILE} or {TOKENIZER_FILE} is missing from the index folder"
    elif find_export(model.fingerprint, precision) is None:
        if info is None:
            return "the index has no ONNX export yet; its next `searcher index` run exports the model"
        return (f"its model's ONNX export is missing from the user cache ({export_folder(model.fingerprint, precision)}); "
                "the next `searcher index` run makes it again")
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install onnxruntime)"
    return None


def load_query_encoder(folder: Path, info: QueryEncoderInfo, dim: int, threads: int = QUERY_THREADS,
                       remedy: str = "delete them: searches then use torch, and the next `searcher index` run "
                                     "exports them again") -> OnnxQueryEncoder:
    """One loaded encoder per process, export folder and thread count (reloaded if the file is
    replaced). Queries run on ``QUERY_THREADS``; an index run passes every core."""
    try:
        stamp = tuple((folder / name).stat().st_mtime_ns for name in (ONNX_FILE, TOKENIZER_FILE))
        return _load(str(folder), info, dim, stamp, threads)
    except Exception as exc:  # noqa: BLE001 - a damaged file: say which and how to get past it
        raise SearcherError(f"{folder / ONNX_FILE} or {TOKENIZER_FILE}: cannot load them ({_first_line(exc)}); "
                            f"{remedy}") from None


@lru_cache(maxsize=8)
def _load(folder: str, info: QueryEncoderInfo, dim: int, stamp: tuple[int, ...], threads: int) -> OnnxQueryEncoder:
    return OnnxQueryEncoder.open(Path(folder), info, dim, threads)


def load_export(export: SharedExport, name: str, threads: int = QUERY_THREADS) -> OnnxQueryEncoder:
    """The encoder of a shared export (one per process, export and thread count), for model ``name``."""
    encoder = load_query_encoder(export.folder, export.info, export.model.dim, threads,
                                 f"delete {export.folder}: searches then use torch, and the next `searcher index` "
                                 "run makes it again")
    encoder.export, encoder.name = export, name
    return encoder


def export_folder(fingerprint: str, precision: str) -> Path:
    """Where the shared export of the model with these weights and this precision lives."""
    return cache_root() / EXPORTS / f"{fingerprint[:32]}-{precision}-v{EXPORT_VERSION}"


def find_export(fingerprint: str, precision: str) -> SharedExport | None:
    """The checked export of the model with these weights, if the user cache holds it whole."""
    found = SharedExport.read(export_folder(fingerprint, precision))
    return found if found is not None and found.model.fingerprint == fingerprint else None


def source_key(source: str) -> str | None:
    """A digest of a local model folder's files (those sentence-transformers loads: ~0.1 s for the
    default model), or None for a name that is not a folder (a hub name: torch finds it)."""
    root = Path(source)
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not (_OTHER_FORMATS & set(rel.parts) or path.suffix in _OTHER_SUFFIXES):
            h.update(str(rel).encode() + b"\0" + bytes.fromhex(_sha256(path)))
    return h.hexdigest()


def _source_record(key: str) -> Path:
    return cache_root() / EXPORTS / "sources" / f"{key[:32]}.json"


def export_for_source(source: str, precision: str) -> SharedExport | None:
    """The shared export of the model in folder ``source``, found without loading it, if one was made."""
    key = source_key(source)
    try:
        fingerprint = json.loads(_source_record(key).read_text(encoding="utf-8"))["fingerprint"] if key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return find_export(fingerprint, precision) if isinstance(fingerprint, str) else None


def remember_source(source: str, fingerprint: str) -> None:
    """Record that the model folder ``source`` holds the weights ``fingerprint`` (best effort: a
    cache that cannot be written only costs the next new index a model load)."""
    if (key := source_key(source)) is None:
        return
    path = _source_record(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "source": source}) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def make_export(encoder: Exportable, model: ModelInfo, special_tokens: int,
                sample: Sequence[str]) -> SharedExport | QueryEncoderInfo:
    """The model's shared export, made now if the cache lacks it (or holds a damaged one): exported
    and checked in a folder beside its final name, then renamed into place, one process at a time.
    A model that cannot be exported gets the torch record that says why (nothing is cached); a
    failure of the machine (``transient``) raises its OSError."""
    folder = export_folder(model.fingerprint, encoder.precision)
    outcome: list[QueryEncoderInfo] = []

    def make() -> None:
        for stale in folder.parent.glob(f".{folder.name}.*.tmp"):   # a killed maker's (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
        tmp.mkdir()
        try:
            info = export(encoder, tmp, [*EXPORT_TEXTS, *sample])
            outcome.append(info)
            if info.kind != "onnx":
                return
            made = SharedExport(folder, model, encoder.precision, special_tokens, info,
                                (tmp / ONNX_FILE).stat().st_size, _sha256(tmp / TOKENIZER_FILE))
            (tmp / RECORD).write_text(json.dumps(made.to_dict(), indent=2) + "\n", encoding="utf-8")
            if folder.exists():          # a damaged copy: moved aside, then replaced
                aside = folder.parent / f".{folder.name}.{os.getpid()}.old.tmp"
                os.replace(folder, aside)
                shutil.rmtree(aside, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    made_once(folder, lambda f: (found := SharedExport.read(f)) is not None and found.intact(), make)
    if outcome and outcome[0].kind != "onnx":
        return outcome[0]
    found = find_export(model.fingerprint, encoder.precision)
    if found is None:
        raise SearcherError(f"{folder}: the ONNX export was made but cannot be read back; delete the folder and "
                            "run again")
    return found


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
                                texts_checked=len(texts), exporter=encoder.exporter,
                                sha256=_sha256(folder / ONNX_FILE))
    finally:
        tmp_onnx.unlink(missing_ok=True)
        tmp_tok.unlink(missing_ok=True)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the machine that a later run may not meet: no space, no
    permission, an I/O error, too many open files, no memory."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in _TRANSIENT)


_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EMFILE,
              errno.ENFILE, errno.ENOMEM}


@lru_cache(maxsize=8)
def _hashed(path: str, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
