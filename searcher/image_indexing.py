"""The write path of images: pictures read by the walk → the image model → one commit per step.

Runs beside the text ``Writer`` (which hands it every image document): each step embeds up to
``STEP_IMAGES`` pictures and commits them, document row and image row together, so a kill loses at
most the step in flight and the next run finds the rest unchanged. A picture whose exact bytes are
already indexed under another path (a copy, a move) reuses that vector. At the end of the run the
image vector index is caught up from SQLite and saved (``store.images``).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .embed.images import ImageModel
from .ingest.readers.image import Picture
from .records import Document, FileReport
from .store import images
from .store.sqlite import Store

STEP_IMAGES = 32          # pictures embedded per step, and so per commit (at most ~25 MB of pixels waiting)


class ImageWriter:
    """Embeds and commits image documents; ``model`` is loaded only when a picture needs a vector."""

    def __init__(self, store: Store, folder: Path, model: Callable[[], ImageModel], dim: int):
        self.store, self.folder, self.model, self.dim = store, folder, model, dim
        self._queue: list[tuple[Document, Picture, str]] = []
        self.reports: list[FileReport] = []
        images.create_tables(store)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def put(self, doc: Document, picture: Picture, status: str) -> None:
        """Queue a new or changed picture; embeds a step when enough are waiting."""
        self._queue.append((doc, picture, status))
        if len(self._queue) >= STEP_IMAGES:
            self.step()

    def step(self) -> None:
        """Embed the waiting pictures (reusing the vector of identical bytes) and commit them."""
        batch, self._queue = self._queue[:STEP_IMAGES], self._queue[STEP_IMAGES:]
        known = [images.vector_by_content(self.store, doc.sha256, self.dim) for doc, _, _ in batch]
        fresh = [i for i, v in enumerate(known) if v is None]
        embedded = self.model().encode_images([batch[i][1].pixels for i in fresh]) if fresh else np.zeros((0, self.dim))
        vectors = dict(zip(fresh, embedded))
        with self.store.write() as gen:
            for i, (doc, picture, _) in enumerate(batch):
                vector = vectors[i] if i in vectors else known[i]
                images.put_image(self.store, doc, picture.width, picture.height, picture.taken, picture.phash,
                                 vector, gen)
        self.reports += [FileReport(doc.id, status, chunks=0, kind="image") for doc, _, status in batch]

    def flush(self) -> None:
        while self._queue:
            self.step()

    def finish(self) -> None:
        """Commit what waits, then save the image vector index as of the store's generation."""
        self.flush()
        images.save(self.store, self.folder, self.dim)
