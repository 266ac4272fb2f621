"""Distributed embedding with Ray Data: the texts an indexing batch must embed go through
``map_batches`` to a pool of Ray actors, each loading the index's model once.

``RayEncoder`` has the ``Encoder`` interface the indexing ``Writer`` uses: ``encode`` runs on the
cluster, tokenization (``token_spans``, for chunking) stays with the local model. Each worker checks
that its model has the same weights (fingerprint) as the driver's, so vectors are the ones local
encoding gives. Ray restarts a killed actor and retries its batch; the Writer commits every batch,
so a killed driver loses at most the batch in flight and the next run resumes.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .embedding import Encoder, ModelInfo, load_encoder
from .errors import SearcherError

ROWS_PER_CALL = 64          # texts handed to a worker at a time


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://host:10001``, or ``local`` to start one
    here), unless this process already has; quiet, since indexing has its own progress bar."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise SearcherError("--ray-address needs Ray: pip install 'searcher[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False if address == "local" else None,
                     log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SearcherError(f"--ray-address {address}: cannot join a Ray cluster ({str(exc).splitlines()[0]}); "
                                "give auto, ray://HEAD:10001 or local") from None
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


class _EmbedWorker:
    """A Ray Data actor holding one copy of the model; ``RayEncoder`` subclasses it per model, so the
    actor needs no constructor arguments (which Ray would keep in its object store for restarts)."""

    model: str
    batch_size: int
    precision: str
    fingerprint: str

    def __init__(self) -> None:
        self.encoder = load_encoder(self.model, self.batch_size, self.precision)
        if self.encoder.info.fingerprint != self.fingerprint:
            raise SearcherError(f"the Ray worker's model '{self.model}' has other weights than the driver's; "
                                "install the same model on every node")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"row": batch["row"], "vector": self.encoder.encode([str(t) for t in batch["text"]])}


class RayEncoder:
    """Embeds on a Ray cluster with the local encoder's model; everything else is the local encoder's.

    The cluster is joined at the first ``encode``, not here: the indexer builds its encoder from
    whichever thread needs it first (its reader thread tokenizes for chunking), and Ray must be
    started from the thread that then drives it."""

    def __init__(self, local: Encoder, address: str, workers: int | None = None):
        self.local = local
        self.address = address
        self.workers = workers
        self._worker_class = type("_EmbedWorker", (_EmbedWorker,), {
            "model": local.name, "batch_size": local.batch_size, "precision": local.precision,
            "fingerprint": local.info.fingerprint})

    def _connect(self) -> int:
        if self.workers is None:
            connect(self.address)
            import ray

            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return self.workers

    @property
    def info(self) -> ModelInfo:
        return self.local.info

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return self.local.token_spans(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        if not texts:
            return np.zeros((0, self.local.dim), dtype=np.float32)
        workers = self._connect()
        import ray.data

        ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
        embedded = ds.map_batches(
            self._worker_class, batch_size=ROWS_PER_CALL, batch_format="numpy", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=min(workers, -(-len(texts) // ROWS_PER_CALL))))
        out = np.zeros((len(texts), self.local.dim), dtype=np.float32)
        for batch in embedded.iter_batches(batch_format="numpy", batch_size=None):
            out[batch["row"]] = batch["vector"]
        return out
