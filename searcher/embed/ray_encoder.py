"""Distributed embedding on Ray: a pool of long-lived Ray actors, each loading the index's model
once for the whole indexing run, embeds the texts of every indexing step.

``RayEncoder`` has the ``Encoder`` interface the indexing ``Writer`` uses: ``encode`` runs on the
cluster, tokenization (``token_spans``, for chunking) stays with the local model. Each worker checks
that its model has the same weights (fingerprint) as the driver's, so vectors are the ones local
encoding gives. Ray restarts a killed actor and retries its call; the Writer commits every step, so
a killed driver loses at most the step in flight and the next run resumes. ``close`` (called when
the run ends) releases the actors; Ray also ends them with the driver process.

Why actors and not Ray Data ``map_batches``: a Ray Data dataset is a fixed input planned when it
executes, and its actor pool lives only as long as that one execution. The Writer produces its
texts one step at a time and needs each step's vectors before it commits and reads on, so a
dataset per step started a new pool (and loaded the model again in every actor) at every step.
One dataset for the run would need a source the driver feeds as it goes — read tasks blocking on
a queue actor — which breaks Ray Data's retries (a re-run read task cannot re-read what its failed
attempt took from the queue) and its backpressure. Long-lived actors with ``max_restarts=-1,
max_task_retries=-1`` behind ``ray.util.ActorPool`` keep the model loaded across steps, keep the
rows in order and survive a killed worker.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SearcherError
from .base import ModelInfo
from .encoder import Encoder
from .models import load_model
from .static import StaticEncoder

ROWS_PER_CALL = 64          # texts handed to a worker at a time


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://host:10001``, or ``local`` to start one
    here), unless this process already has; quiet, since indexing has its own progress bar."""
    try:
        import ray
    except ImportError:
        raise SearcherError("--ray-address needs Ray: pip install 'searcher[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False if address == "local" else None,
                     log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SearcherError(f"--ray-address {address}: cannot join a Ray cluster ({str(exc).splitlines()[0]}); "
                                "give auto, ray://HEAD:10001 or local") from None


class _EmbedWorker:
    """A Ray actor holding one copy of the model for the life of a ``RayEncoder``."""

    def __init__(self, model: str, batch_size: int, precision: str, fingerprint: str) -> None:
        self.encoder = load_model(model, batch_size, precision, fingerprint)
        if self.encoder.info.fingerprint != fingerprint:
            raise SearcherError(f"the Ray worker's model '{model}' has other weights than the driver's; "
                                "install the same model on every node")

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)


class RayEncoder:
    """Embeds on a Ray cluster with the local encoder's model; everything else is the local encoder's.

    The cluster is joined and the actors started at the first ``encode``, not here: the indexer
    builds its encoder from whichever thread needs it first (its reader thread tokenizes for
    chunking), and Ray must be started from the thread that then drives it."""

    def __init__(self, local: Encoder | StaticEncoder, address: str, workers: int | None = None):
        self.local = local
        self.address = address
        self.workers = workers
        self._actors: list[Any] = []
        self._pool: Any = None

    def _start(self) -> Any:
        """The actor pool, one model-holding actor per worker (per cluster CPU unless given)."""
        if self._pool is None:
            connect(self.address)
            import ray
            from ray.util import ActorPool

            if self.workers is None:
                self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
            worker = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(_EmbedWorker)
            self._actors = [worker.remote(self.local.name, self.local.batch_size, self.local.precision,
                                          self.local.info.fingerprint) for _ in range(self.workers)]
            self._pool = ActorPool(self._actors)
        return self._pool

    @property
    def info(self) -> ModelInfo:
        return self.local.info

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return self.local.token_spans(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        if not texts:
            return np.zeros((0, self.local.dim), dtype=np.float32)
        pool = self._start()
        from ray.exceptions import RayActorError

        calls = [list(texts[i:i + ROWS_PER_CALL]) for i in range(0, len(texts), ROWS_PER_CALL)]
        try:
            return np.vstack(list(pool.map(lambda actor, part: actor.encode.remote(part), calls)))
        except RayActorError as exc:   # e.g. a worker whose model differs: its actor cannot start
            self.close()
            reason = re.sub(r"^[\w.]*(Error|Exception): ", "", str(exc).strip().splitlines()[-1])
            raise SearcherError(f"Ray workers at {self.address} cannot embed: {reason}") from None

    def close(self) -> None:
        """Release the actors (and their models); a later ``encode`` starts new ones."""
        if self._actors:
            import ray

            for actor in self._actors:
                ray.kill(actor)
        self._actors, self._pool = [], None
