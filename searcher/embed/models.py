"""Which encoder a model name means: a static table (``static``, or a Model2Vec folder) or a
sentence-transformers model. The façade and the Ray workers load models through here."""
from __future__ import annotations

from ..errors import SearcherError
from .encoder import Encoder, load_encoder
from .static import StaticEncoder, is_static, load_static


def load_model(name: str, batch_size: int = 32, precision: str = "float32",
               fingerprint: str | None = None) -> Encoder | StaticEncoder:
    """The loaded model ``name`` (one per process). ``fingerprint``: the weights an index recorded,
    which find a static model's cached table without hashing its source."""
    if is_static(name):
        if precision != StaticEncoder.precision:
            raise SearcherError(f"a static model computes in {StaticEncoder.precision} only, not {precision}; "
                                "leave out --precision")
        return load_static(name, batch_size, fingerprint)
    return load_encoder(name, batch_size, precision)
