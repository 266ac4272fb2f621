"""``Searcher``: the one façade over the pipeline, used by the CLI, by programs, and by servers.

An index is a folder (see docs/format.md). ``Searcher`` opens it lazily: nothing heavy is loaded
until a method needs the model or the vectors, and every write holds the folder's writer lock.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import IndexConfig, read_manifest, update_manifest, vectors_entry, write_manifest
from .embed.base import TextEncoder
from .embed.encoder import DEFAULT_MODEL, DEFAULT_PRECISION, Encoder, load_reranker, resolve_model
from .embed.models import load_model
from .embed.onnx import (
    ONNX_FILE,
    QUERY_THREADS,
    SAMPLE_CHUNKS,
    TOKENIZER_FILE,
    OnnxQueryEncoder,
    QueryEncoderInfo,
    export_for_source,
    exported,
    find_export,
    load_export,
    load_query_encoder,
    make_export,
    remember_source,
    unavailable,
)
from .embed.static import StaticEncoder, is_static
from .errors import SearcherError
from .ingest.chunking import ChunkingConfig
from .records import Document, DuplicateGroup, Filters, Hit, ImageHit, IndexReport, MapReport, Outlier, Similar, Topic
from .search.query import Fusion, Mode, QueryEncoder, SearchOptions
from .search.query import search as run_query
from .store.ann import AnnSettings
from .store.faiss_index import saved_info
from .store.locking import WriterLock
from .store.protocol import VectorStore, VectorStoreConfig
from .store.sqlite import Store
from .store.vectors import create_vectors, discard_vectors, open_vectors

if TYPE_CHECKING:   # the write path's and the analyses' modules load when used: a search does not pay for them
    from .analyze.units import Units
    from .embed.images import ImageModel
    from .embed.ray_encoder import RayEncoder
    from .indexing import Progress, Writer
    from .ingest.walk import WalkOptions
    from .store.faiss_index import VectorIndex

DB_FILE = "searcher.db"
DEFAULT_OVERLAP_TOKENS = 32


def default_index_root() -> Path:
    """Where named indexes live: $SEARCHER_INDEXES, else the repository's ``indexes/`` folder when
    running from a source checkout, else ~/.local/share/searcher/indexes."""
    if env := os.environ.get("SEARCHER_INDEXES"):
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent / "indexes"
    if repo.is_dir() and os.access(repo, os.W_OK):
        return repo
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data / "searcher" / "indexes"


def _static_index(config: IndexConfig) -> bool:
    """Whether a static model built the index: its manifest says so after the first write."""
    qe = config.query_encoder
    return qe.kind == "static" if qe is not None else is_static(config.model.name)


def as_filters(filters: Filters | dict | None) -> Filters:
    """A ``Filters`` from itself, a dict of its fields, or None (no filter)."""
    if isinstance(filters, dict):
        try:
            return Filters(**{key: tuple(v) if key == "types" else v for key, v in filters.items()})
        except TypeError as exc:
            raise SearcherError(f"filters: {exc}") from None
    return filters or Filters()


class Searcher:
    """Index folders or texts and search them by meaning.

    >>> s = Searcher("indexes/notes")          # doctest: +SKIP
    >>> s.index("~/notes")                      # doctest: +SKIP
    >>> s.search("how do I rotate the logs", k=5)  # doctest: +SKIP
    """

    def __init__(self, index: str | Path | None = None, model: str | None = None, *,
                 chunk_tokens: int | None = None, overlap_tokens: int | None = None, batch_size: int = 32,
                 vector_store: VectorStoreConfig | None = None, milvus_token: str | None = None,
                 ray_address: str | None = None, precision: str | None = None,
                 ann: str | None = None, vector_dtype: str | None = None, memory_budget: int | str | None = None,
                 image_model: str | None = None):
        """``vector_store``: where a new index keeps its vectors (default FAISS; see
        ``vectorstores.milvus_config``). ``ray_address`` (auto, ray://host:10001 or local): embed
        new text on a Ray cluster while indexing. ``precision`` (float32, int8): the encoder's
        arithmetic, fixed at creation. ``ann`` (auto, flat, hnsw, ivf, ivfpq) and ``memory_budget``
        (bytes, or e.g. "4GB") choose the FAISS structure and may change between runs;
        ``vector_dtype`` (float32, float16, int8) is fixed when the index is created. All are
        recorded in the manifest (docs/format.md). ``image_model`` (``efficientnet-lite0``, or a
        sentence-transformers CLIP name or folder): the index also reads pictures (docs/images.md);
        recorded in the manifest the first time, another one later is an error."""
        self.path = Path(index).expanduser().resolve() if index else default_index_root() / "default"
        self._model_name = model
        self._chunk_tokens, self._overlap_tokens = chunk_tokens, overlap_tokens
        AnnSettings(ann or "auto", vector_dtype or "float32", memory_budget)   # a bad value fails here
        self._ann, self._vector_dtype, self._memory_budget = ann, vector_dtype, memory_budget
        self._batch_size = batch_size
        self._vector_store, self._milvus_token, self._ray_address = vector_store, milvus_token, ray_address
        self._ray_encoder: RayEncoder | None = None
        self._precision = precision     # the encoder's (embedding.PRECISIONS); fixed when the index is created
        self._config: IndexConfig | None = None
        self._encoder: Encoder | StaticEncoder | None = None
        self._store: Store | None = None
        self._vectors: VectorStore | None = None
        self._vectors_gen = -1
        self._export_broken = False   # this write found the index's ONNX export damaged: export it again
        self._image_model_name = image_model
        self._image_model: ImageModel | None = None
        self._images: tuple[VectorIndex, int] | None = None    # the image vector index and its generation

    # ---- opening -------------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return (self.path / "manifest.json").is_file()

    def _check_not_a_file(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise SearcherError(f"{self.path}: is a file, not an index folder; choose another --index")

    def _read_config(self) -> IndexConfig:
        if self._config is None:
            self._check_not_a_file()
            config = read_manifest(self.path)
            if config is None:
                raise SearcherError(f"no index at {self.path}: build one first with `searcher index FOLDER`")
            self._check_options(config)
            self._config = config
        return self._config

    def _check_options(self, config: IndexConfig) -> None:
        c = config.chunking
        for given, kept, what in ((self._chunk_tokens, c.max_tokens, "chunk size"),
                                  (self._overlap_tokens, c.overlap_tokens, "overlap"),
                                  (self._precision, config.precision, "encoder precision")):
            if given is not None and given != kept:
                raise SearcherError(f"{self.path}: this index was built with {what} {kept}, not {given}; "
                                    "use the same setting or build a new index with --index")
        given, kept = self._vector_store, config.vector_store
        if given is not None and (given.kind != kept.kind or given.kind == "milvus" and given.uri != kept.uri):
            raise SearcherError(f"{self.path}: this index keeps its vectors in {kept.describe()}; leave out "
                                "the vector-store options, or move them with `searcher migrate`")
        if self._vector_dtype is not None and self._vector_dtype != config.vectors.dtype:
            raise SearcherError(f"{self.path}: this index stores {config.vectors.dtype} vectors, not "
                                f"{self._vector_dtype}; leave out --vector-dtype or build a new index with --index")

    def _encoder_for(self, config: IndexConfig | None) -> Encoder | StaticEncoder:
        if self._encoder is None:
            name = self._model_name or (config.model.name if config else DEFAULT_MODEL)
            precision = config.precision if config else self._precision or DEFAULT_PRECISION
            # the index's own model: its recorded weights find a static model's cached table
            recorded = config.model.fingerprint if config is not None and self._model_name is None else None
            self._encoder = load_model(name, self._batch_size, precision, recorded)
        if config is not None and self._model_name is not None:
            info = self._encoder.info
            if info.fingerprint != config.model.fingerprint or info.dim != config.model.dim:
                raise SearcherError(
                    f"{self.path}: built with model '{config.model.name}' (dim {config.model.dim}, weights "
                    f"{config.model.fingerprint[:12]}), but '{self._model_name}' is a different model "
                    f"(dim {info.dim}, weights {info.fingerprint[:12]}); leave out --model or build a new index")
        return self._encoder

    # ---- the shared ONNX export (embed/onnx.py): one per model and machine, in the user cache -----
    def _light_encoder(self, config: IndexConfig, threads: int = QUERY_THREADS,
                       check: bool = False) -> OnnxQueryEncoder | None:
        """The index's checked ONNX export (no torch in the process) when it exists: the shared one
        in the user cache, or the index's own for an index made before the cache; else None. A
        --model other than the index's own name is loaded with torch, so that its weights can be
        compared with the manifest. A static model needs none: its own encoder is a table lookup.
        ``check``: hash the shared file against its record first (index runs)."""
        if _static_index(config) or self._model_name not in (None, config.model.name):
            return None
        qe = config.query_encoder
        if qe is not None and qe.in_folder:
            if unavailable(self.path, qe, config.model, config.precision) is None:
                return load_query_encoder(self.path, qe, config.model.dim, threads)
            return None
        if qe is not None and qe.kind == "torch":
            return None
        shared = find_export(config.model.fingerprint, config.precision)
        if shared is None:
            return None
        if check and not shared.intact():
            raise SearcherError(f"{shared.folder}: its files' bytes are not those checked when they were made")
        return load_export(shared, config.model.name, threads)

    def _query_encoder(self, config: IndexConfig) -> QueryEncoder:
        """For searching: the light encoder, else the torch model."""
        return self._light_encoder(config) or self._encoder_for(config)

    def _new_index_model(self) -> Encoder | StaticEncoder | OnnxQueryEncoder:
        """The model of an index being created: the shared export when this model folder was
        exported before (no torch: the record says dimension, window and weights), else the model."""
        name, precision = self._model_name or DEFAULT_MODEL, self._precision or DEFAULT_PRECISION
        if self._ray_address is None and not is_static(name):
            try:
                if (shared := export_for_source(resolve_model(name), precision)) is not None:
                    return load_export(shared, name, len(os.sched_getaffinity(0)))
            except SearcherError:   # a damaged export: load the model, and make it again
                pass
        return self._encoder_for(None)

    def _same_weights(self, config: IndexConfig) -> bool:
        """Whether --model names a model folder whose shared export records the index's weights
        (found by the folder's content, without loading the model)."""
        name = self._model_name or config.model.name
        if is_static(name):
            return False
        shared = export_for_source(resolve_model(name), config.precision)
        return shared is not None and shared.model.fingerprint == config.model.fingerprint

    def _export_wanted(self) -> bool:
        """Record an export at the end of a write when the manifest has none yet, names another
        file than the cache holds, or the index's own export is gone or did not load in this run."""
        config = self._read_config()
        info = config.query_encoder
        if info is None or self._export_broken:
            return True
        if info.kind != "onnx":
            return False
        if info.in_folder:
            return not exported(self.path)
        shared = find_export(config.model.fingerprint, config.precision)
        return shared is None or shared.info.sha256 != info.sha256

    def _export_query_encoder(self, up_front: bool = False) -> None:
        """Record in the manifest the shared export of the index's model, making it first (with torch,
        once per model and machine) when the user cache lacks it or holds a damaged copy; the
        outcome of a model that cannot be exported is recorded too (searches then use torch). An
        index's own export from before the cache is dropped once the shared one is recorded.
        ``up_front``: made before the run embeds (from the reader thread, which leaves the store alone)."""
        config = self._read_config()
        if _static_index(config):
            self._config = update_manifest(self.path, "query_encoder", {"kind": "static"})
            return
        shared = find_export(config.model.fingerprint, config.precision)
        if shared is None or not shared.intact():
            encoder = self._encoder_for(config)
            if isinstance(encoder, StaticEncoder):   # the manifest said so
                return
            sample: list[str] = []
            if not up_front:
                store = self._open_store()
                with store.snapshot():
                    sample = store.sample_texts(SAMPLE_CHUNKS)
            try:
                made = make_export(encoder, config.model, encoder.special_tokens, sample)
            except OSError as exc:   # the machine's failure, not the model's: not recorded, the next run retries
                raise SearcherError(f"{self.path}: the index is up to date, but exporting its model for fast "
                                    f"searches failed ({exc.strerror or exc}); searches use torch until a later "
                                    "`searcher index` run exports it (free space or fix permissions in "
                                    f"{exc.filename or 'the user cache'}, then run it again)") from None
            if isinstance(made, QueryEncoderInfo):
                self._config = update_manifest(self.path, "query_encoder", made.to_dict())
                return
            shared = made
        if isinstance(self._encoder, Encoder):
            remember_source(resolve_model(self._encoder.name), config.model.fingerprint)
        self._config = update_manifest(self.path, "query_encoder", shared.info.to_dict())
        for name in (ONNX_FILE, TOKENIZER_FILE):    # the index's own copy, from before the shared cache
            (self.path / name).unlink(missing_ok=True)

    def _open_store(self) -> Store:
        if self._store is None:
            config = self._read_config()
            self._store = Store.open(self.path / DB_FILE, config.model.dim, config.vectors.dtype)
        return self._store

    def _create(self) -> IndexConfig:
        """Make a new, empty index folder; the manifest is written last, so a cut-short creation
        leaves no index behind, only files that the next attempt reuses."""
        encoder = self._new_index_model()
        max_tokens = self._chunk_tokens or encoder.max_chunk_tokens
        if max_tokens > encoder.max_chunk_tokens:
            raise SearcherError(f"chunk size {max_tokens} is more than model '{encoder.name}' can read "
                                f"({encoder.max_chunk_tokens} tokens); choose at most that")
        overlap = DEFAULT_OVERLAP_TOKENS if self._overlap_tokens is None else self._overlap_tokens
        try:
            chunking = ChunkingConfig(max_tokens, min(overlap, max_tokens // 2 - 1))
        except ValueError as exc:
            raise SearcherError(str(exc)) from None
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / ".searcherignore").write_text("*\n")  # never index the index itself
        Store.create(self.path / DB_FILE, encoder.dim).close()
        config = IndexConfig(encoder.info, chunking, precision=encoder.precision,
                             vector_store=self._vector_store or VectorStoreConfig(),
                             vectors=self._settings(AnnSettings()))
        write_manifest(self.path, config)
        return config

    def _settings(self, kept: AnnSettings) -> AnnSettings:
        """The vector settings asked for in this run, the index's own where none was given."""
        return AnnSettings(self._ann or kept.ann, self._vector_dtype or kept.dtype,
                           kept.memory_budget if self._memory_budget is None else self._memory_budget)

    def _writer(self) -> Writer:
        from .indexing import Writer

        config = self._read_config() if self.exists else self._create()
        if self._settings(config.vectors) != config.vectors:    # --ann / --memory-budget changed
            config = update_manifest(self.path, "vectors", vectors_entry(self._settings(config.vectors)))
        if self._image_model_name is not None and config.image_model is None:   # the index starts reading images
            from .store import images

            info = self._image_encoder(None).info
            images.create_tables(self._open_store())     # before the manifest names a model: readers find them
            config = update_manifest(self.path, "image_model", info.to_dict())
        self._config = config
        if self._model_name is not None and not self._same_weights(config):
            self._encoder_for(config)   # a wrong --model is an error even when nothing needs embedding
        if self._image_model_name is not None:
            self._image_encoder(config)
        store = self._open_store()
        if config.vector_store.remote:
            self._drop_vectors()   # a shared store: the writer starts from what it really holds
        with store.snapshot():
            vectors = self._synced_vectors(store, writing=True)
        images = None
        if config.image_model is not None:
            from .image_indexing import ImageWriter

            images = ImageWriter(store, self.path, lambda: self._image_encoder(config), config.image_model.dim)
        return Writer(store, vectors, lambda: self._index_encoder(config), config.chunking, images)

    def _index_encoder(self, config: IndexConfig) -> TextEncoder:
        """The encoder for indexing: the model's checked ONNX export on every core (after the first
        index of a model on the machine, a run never loads torch), made first when the cache lacks
        it; else the local model, or a Ray cluster running it."""
        if self._ray_address is None:
            cores = len(os.sched_getaffinity(0))
            try:
                if light := self._light_encoder(config, cores, check=True):
                    return light
            except SearcherError:   # a damaged export: made again below, or at the end of the run
                self._export_broken = True
            if not _static_index(config) and self._model_name in (None, config.model.name) and self._export_wanted():
                try:
                    self._export_query_encoder(up_front=True)   # tokenizing and embedding then go through it
                except SearcherError:   # the machine's failure (a full disk): the end of the run tries again, says it
                    return self._encoder_for(config)
                self._export_broken = False
                try:
                    if light := self._light_encoder(self._read_config(), cores):
                        return light
                except SearcherError:
                    self._export_broken = True
            return self._encoder_for(config)
        encoder = self._encoder_for(config)
        if self._ray_encoder is None:
            from .embed.ray_encoder import RayEncoder

            self._ray_encoder = RayEncoder(encoder, self._ray_address)
        return self._ray_encoder

    def _release_ray(self) -> None:
        """End the run's Ray workers (each held the model for the whole run)."""
        if self._ray_encoder is not None:
            self._ray_encoder.close()
            self._ray_encoder = None

    def _drop_vectors(self) -> None:
        """Forget the open vector store (the next search opens it again), releasing its connection."""
        if self._vectors is not None:
            self._vectors.close()
        self._vectors, self._vectors_gen = None, -1

    def _synced_vectors(self, store: Store, writing: bool = False) -> VectorStore:
        """The vector store as of the current snapshot: opened, then caught up with the store's
        later commits (or rebuilt from the store when it cannot be caught up)."""
        gen = store.generation()
        config = self._read_config()
        if self._vectors is None or self._vectors_gen < store.tombstones_pruned_through():
            self._drop_vectors()
            self._vectors, self._vectors_gen = open_vectors(
                config.vector_store, self.path, config.model.dim, gen, store.tombstones_pruned_through(),
                writing=writing, token=self._milvus_token)
        if self._vectors_gen < gen:
            self._vectors.remove(store.removed_since(self._vectors_gen))
            for ids, vecs in store.vectors_since(self._vectors_gen):
                self._vectors.add(ids, vecs)
            self._vectors_gen = gen
        return self._vectors

    def _write(self, action, progress: Progress | None = None, export: bool = True):
        """Run ``action(writer)`` under the writer lock, then persist the vector index, first
        switching its structure (or compacting it) when its size calls for it, and the first time,
        export the query encoder."""
        self._check_not_a_file()
        self.path.mkdir(parents=True, exist_ok=True)
        self._export_broken = False
        with WriterLock(self.path):
            try:
                writer = self._writer()
                result = action(writer)
                writer.flush()
                store = writer.store
                with store.snapshot():
                    writer.vectors.maintain(self._read_config().vectors, lambda: store.vectors_since(-1),
                                           writer.calibration_queries, progress)
                writer.finish(self.path)
                self._vectors_gen = self._open_store().generation()
            except BaseException:
                self._drop_vectors()   # reload from what was committed
                raise
            finally:
                self._images = None       # the run saved a new image file, or failed: reload either way
                self._release_ray()
            if export and self._export_wanted():
                self._export_query_encoder()
        return result

    # ---- the public API ------------------------------------------------------------------------
    def index(self, folder: str | Path, *, options: WalkOptions | None = None,
              progress: Progress | None = None, paths: Sequence[str | Path] | None = None) -> IndexReport:
        """Bring the index up to date with a folder (or one file): add, update, remove.
        ``options``: what to read (default ``WalkOptions()``). ``paths``: only these files or folders
        of ``folder`` (changed, new or deleted ones), without walking the rest — what ``searcher
        watch`` does after each change."""
        from .indexing import check_found, index_folder
        from .ingest.walk import WalkOptions, walk

        root = Path(folder).expanduser()
        if not root.exists():
            raise SearcherError(f"{folder}: no such file or folder")
        root = root.resolve()
        if root == self.path or root.is_relative_to(self.path):
            raise SearcherError(f"{folder}: is inside the index folder {self.path}; index your documents instead")
        options = options or WalkOptions()
        if self._image_model_name is not None or (self.exists and self._read_config().image_model is not None):
            options = replace(options, images=True)
        if paths is not None:
            paths = [Path(os.path.abspath(Path(p).expanduser())) for p in paths]
            if outside := [p for p in paths if not p.is_relative_to(root)]:
                raise SearcherError(f"{outside[0]}: is not inside {root}; give paths of the folder being indexed")
        found = None
        if not self.exists and paths is None:   # a new index: refuse an empty folder before loading a model
            found = list(walk(root, options))
            check_found(root, found, known=False)
        return self._write(lambda w: index_folder(root, w, options, progress, paths, found), progress=progress)

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None,
            metadata: Sequence[dict[str, Any]] | None = None, *, progress: Progress | None = None) -> list[str]:
        """Index texts that are not files; returns their ids (new random ids where none are given).

        A text added under an existing id replaces that document; the same text and metadata under
        the same id again is recognised and costs nothing."""
        if isinstance(texts, str):
            raise SearcherError("add() takes a list of texts, not one string")
        texts = list(texts)
        ids = [str(i) for i in ids] if ids is not None else [uuid.uuid4().hex for _ in texts]
        metas = [dict(m or {}) for m in metadata] if metadata is not None else [{} for _ in texts]
        if not (len(ids) == len(texts) == len(metas)):
            raise SearcherError(f"add(): got {len(texts)} texts, {len(ids)} ids and {len(metas)} metadata")
        if len(set(ids)) != len(ids):
            raise SearcherError("add(): ids must be unique")
        for text, doc_id, meta in zip(texts, ids, metas):
            if not isinstance(text, str) or not text.strip():
                raise SearcherError(f"add(): the text for id '{doc_id}' is empty")
            try:
                json.dumps(meta, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise SearcherError(f"add(): the metadata for id '{doc_id}' is not JSON ({exc}); "
                                    "use strings, numbers, booleans, lists and objects") from None

        def run(writer: Writer) -> list[str]:
            known = writer.store.api_states(ids)
            for done, (text, doc_id, meta) in enumerate(zip(texts, ids, metas), 1):
                data = text.encode("utf-8")
                doc = Document(doc_id, text, None, len(data), time.time_ns(), hashlib.sha256(data).hexdigest(), meta)
                if known.get(doc_id) != (doc.sha256, json.dumps(meta, ensure_ascii=False, sort_keys=True)):
                    writer.put(doc, "api", "updated" if doc_id in known else "added")
                if progress:
                    progress(done, len(texts))
            writer.flush()
            return ids
        return self._write(run, progress=progress)

    def delete(self, ids: Sequence[str]) -> int:
        """Remove documents by id (an added id, or an indexed file's path); returns how many existed."""
        if isinstance(ids, str):
            ids = [ids]
        if not self.exists:
            raise SearcherError(f"no index at {self.path}: nothing to delete")
        return self._write(lambda w: w.remove([str(i) for i in ids]), export=False)

    def get(self, ids: Sequence[str]) -> list[Document]:
        """The documents with these ids (an added id, or an indexed file's path), in the order asked;
        ids not in the index are left out. The index keeps chunks, not whole texts, so each text is
        rebuilt from its chunks: exact except for white space between chunks (see ``Store.documents_by_id``)."""
        if isinstance(ids, str):
            ids = [ids]
        ids = [str(i) for i in ids]
        self._read_config()
        store = self._open_store()
        with store.snapshot():
            found = store.documents_by_id(list(dict.fromkeys(ids)))
        from .ingest.readers import kind_of

        return [replace(d, kind=kind_of(os.path.basename(d.path)) or "text") if d.path else d
                for d in (found[i] for i in dict.fromkeys(ids) if i in found)]

    def search(self, query: str, k: int = 10, *, mode: Mode = "hybrid", filters: Filters | dict | None = None,
               group_by_file: bool = False, min_score: float | None = None,
               rerank: str | None = None, fusion: Fusion = "zscore", feedback: bool = True,
               fold_identical: bool = True) -> list[Hit]:
        """The ``k`` chunks that best answer ``query``, best first.

        ``mode``: "hybrid" (dense and BM25 keyword candidates fused by reciprocal rank), "dense" or
        "keyword". ``filters``: a ``Filters`` or a dict of its fields (path glob, types,
        modified_after/before, metadata). ``group_by_file``: only the best chunk of each document.
        ``rerank``: a sentence-transformers CrossEncoder that re-scores the top candidates.
        ``fusion`` ("zscore" or "rrf") and ``feedback`` (pseudo-relevance feedback) shape hybrid mode.
        ``fold_identical``: chunks with exactly the same text (identical files) make one hit that lists
        the other places in ``Hit.also``."""
        options = SearchOptions(k=k, mode=mode, filters=as_filters(filters), group_by_file=group_by_file,
                                min_score=min_score, rerank=rerank, fusion=fusion, feedback=feedback,
                                fold_identical=fold_identical)
        config = self._read_config()
        store = self._open_store()
        with store.snapshot():
            return run_query(query, options, lambda: self._query_encoder(config), lambda: self._synced_vectors(store),
                             store, load_reranker)

    # ---- analyze: similar, duplicates, outliers, topics, map (docs/analyze.md) -------------------
    def _units(self, filters: Filters | dict | None, chunks: bool = False) -> Units:
        """Every document (or chunk) passing the filters, with its vector; one snapshot."""
        filters = as_filters(filters)
        self._read_config()
        store = self._open_store()
        with store.snapshot():
            found = store.analysis_chunks(filters)
        if not found[0]:
            raise SearcherError(f"the index at {self.path} has no documents"
                                + ("" if filters.empty else " that pass the filters") + "; nothing to analyse")
        from .analyze import units

        return (units.chunk_units if chunks else units.documents)(*found)

    def similar(self, target: str | None = None, k: int = 10, *, file: str | Path | None = None,
                filters: Filters | dict | None = None) -> list[Similar]:
        """The ``k`` documents most like ``target`` — an indexed document's id or path, or a chunk
        ``ID#n`` — or like ``file``, a file that need not be indexed (read, chunked and embedded
        like any file). The document itself is left out of the answer."""
        if (target is None) == (file is None):
            raise SearcherError("similar: give either a document (id, path or ID#chunk) or a file, not both")
        if not isinstance(k, int) or k <= 0:
            raise SearcherError(f"k must be a positive whole number, got {k!r}")
        from .analyze import similar as analyze_similar

        config = self._read_config()
        store = self._open_store()
        exclude = None
        if file is not None:
            encoder = self._light_encoder(config) or self._encoder_for(config)
            vectors, terms = analyze_similar.file_vectors(Path(file).expanduser(), encoder, config.chunking)
        with store.snapshot():
            if target is not None:
                vectors, terms, exclude = analyze_similar.target_vectors(store, str(target), self.path)
            return analyze_similar.similar(store, self._synced_vectors(store), vectors, terms, k,
                                           as_filters(filters), exclude)

    def duplicates(self, *, tiers: Sequence[str] = ("exact", "near", "semantic"), chunks: bool = False,
                   threshold: float | None = None, near_threshold: float | None = None,
                   filters: Filters | dict | None = None) -> list[DuplicateGroup]:
        """Groups of documents (``chunks``: of chunks) that say the same thing, tier by tier:
        exact, near (edited copies, containment ≥ ``near_threshold``), semantic (same meaning,
        score ≥ ``threshold``). Defaults are measured (docs/analyze.md)."""
        from .analyze import duplicates as analyze_duplicates

        analyze_duplicates.check_threshold(threshold, "threshold")
        analyze_duplicates.check_threshold(near_threshold, "near threshold")
        return analyze_duplicates.find(self._units(filters, chunks), tiers, near_threshold, threshold)

    def outliers(self, k: int = 10, *, filters: Filters | dict | None = None) -> list[Outlier]:
        """The ``k`` documents least like the rest, most unusual first."""
        if not isinstance(k, int) or k <= 0:
            raise SearcherError(f"k must be a positive whole number, got {k!r}")
        from .analyze import outliers as analyze_outliers

        return analyze_outliers.rank(self._units(filters), k)

    def topics(self, n: int | None = None, *, filters: Filters | dict | None = None) -> list[Topic]:
        """The collection's topics, largest first (``n``: how many; by default the dendrogram's widest gap, 2..12)."""
        from .analyze import topics as analyze_topics

        return analyze_topics.topics(self._units(filters), n)[0]

    def map(self, out: str | Path, *, color_by: str = "topic", topics: int | None = None,
            filters: Filters | dict | None = None) -> MapReport:
        """Draw the collection to ``out``: .html (interactive, self-contained) or .png."""
        from .analyze import corpus_map as analyze_map
        from .analyze import topics as analyze_topics

        start = time.perf_counter()
        path = analyze_map.check_output(out, color_by)
        units = self._units(filters)
        found, labels = analyze_topics.topics(units, topics)
        analyze_map.draw(units, analyze_map.project(units.vectors), labels, found, color_by, path)
        return MapReport(str(path.resolve()), len(units), analyze_map.projection_name(len(units)), color_by,
                         tuple(found), time.perf_counter() - start)

    def evaluate(self, collection: str | Path, modes: Sequence[Mode] = ("hybrid",), *,
                 progress: Progress | None = None, **search_options: Any) -> dict[str, dict[str, float]]:
        """Index a test collection (incrementally) and measure each search mode on its queries.

        Documents are ranked by their best chunk, 100 deep; ``search_options`` go to ``search()``
        (e.g. fusion="rrf"). See ``searcher.evaluation`` for the metrics."""
        from .search import evaluation

        coll = evaluation.load_collection(collection)
        self.add([text for _, text in coll.corpus], ids=[doc_id for doc_id, _ in coll.corpus], progress=progress)
        return {mode: evaluation.evaluate(lambda q, m=mode: [h.id for h in self.search(
                    q, k=100, mode=m, group_by_file=True, **search_options)], coll)
                for mode in modes}

    def migrate(self, to: VectorStoreConfig) -> dict[str, Any]:
        """Move the index's vectors to another store (FAISS ↔ Milvus) without re-embedding.

        The vectors are copied from SQLite into the new store; the manifest switches to it only
        when the copy is complete, so a migration cut short leaves the index as it was. The old
        store is deleted last."""
        config = self._read_config()
        old = config.vector_store
        if (to.kind, to.uri, to.collection) == (old.kind, old.uri, old.collection):
            raise SearcherError(f"{self.path}: already keeps its vectors in {old.describe()}")
        started = time.monotonic()
        with WriterLock(self.path):
            store = self._open_store()
            target = create_vectors(to, config.model.dim, self._milvus_token)
            moved = 0
            with store.snapshot() as gen:
                for ids, vecs in store.vectors_since(-1):
                    target.add(ids, vecs)
                    moved += len(ids)
            target.save(self.path, gen)
            target.close()
            self._config = update_manifest(self.path, "vector_store", to.to_dict())
            self._drop_vectors()
            try:
                discard_vectors(old, self.path, self._milvus_token)
                left = None
            except SearcherError as exc:   # the migration is done; only the clean-up failed
                left = str(exc)
        return {"index": str(self.path), "vectors": moved, "generation": gen, "from": old.describe(),
                "to": to.describe(), "seconds": round(time.monotonic() - started, 3), "old_store_left": left}

    def warm(self, writing: bool = False) -> None:
        """Load now what the first request would otherwise wait for (servers call this at start):
        the query encoder and the vectors of an existing index, the indexing model for a new one.
        ``writing``: also the indexing model (a watcher's first save should not wait for it)."""
        if not self.exists:
            self._new_index_model()
            return
        config = self._read_config()
        if writing:
            self._light_encoder(config, len(os.sched_getaffinity(0))) or self._encoder_for(config)
        self._query_encoder(config)
        store = self._open_store()
        with store.snapshot():
            self._synced_vectors(store)

    def info(self) -> dict[str, Any]:
        """What is in the index and what built it."""
        config = self._read_config()
        store = self._open_store()
        with store.snapshot():
            stats = store.stats()
            if config.image_model is not None:
                from .store import images

                stats["images"] = images.count(store) if images.has_tables(store) else 0
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        static = _static_index(config)
        why_torch = None if static else unavailable(self.path, config.query_encoder, config.model, config.precision)
        own = config.query_encoder is not None and config.query_encoder.in_folder   # an index from before the cache
        shared = None if static or why_torch or own else find_export(config.model.fingerprint, config.precision)
        ann = saved_info(self.path) or {}
        return {
            "index": str(self.path), **stats, "model": config.model.to_dict(),
            "chunking": {"max_tokens": config.chunking.max_tokens, "overlap_tokens": config.chunking.overlap_tokens},
            **({"ann": ann.get("kind", "flat"), "ann_description": ann.get("description", "exact (nothing saved yet)"),
                "ann_recall@10": ann.get("recall@10", 1.0), "ann_detail": ann}
               if config.vector_store.kind == "faiss" else
               {"ann": config.vector_store.index_type, "ann_description": config.vector_store.describe(),
                "ann_recall@10": None, "ann_detail": {}}),
            "ann_setting": config.vectors.ann, "vector_dtype": config.vectors.dtype,
            "memory_budget": config.vectors.budget,
            "vector_store": config.vector_store.kind,
            "query_encoder": {**(config.query_encoder.to_dict() if config.query_encoder else {}),
                              "active": "static" if static else "torch" if why_torch else "onnx",
                              "why_torch": why_torch,
                              **({"file": str(shared.folder / ONNX_FILE)} if shared else {})},
            "disk_bytes": size,
            "image_model": config.image_model.to_dict() if config.image_model else None,
        }

    def files(self) -> dict[str, Any]:
        """What is indexed (id, source, reader kind, chunks) and what the last index runs skipped, and why."""
        from .ingest import skiplog

        self._read_config()
        store = self._open_store()
        with store.snapshot():
            docs = [{"id": d, "source": src, "kind": _file_kind(d) if src == "file" else None,
                     "chunks": n} for d, src, n in store.documents()]
            skipped = skiplog.skipped(store.conn)
        return {"indexed": docs, "skipped": skipped}

    def close(self) -> None:
        """Release the index's files, connections and Ray workers; the next call reopens what it needs
        (a milvus-lite file can then be opened by another process meanwhile)."""
        self._drop_vectors()
        self._release_ray()
        self._images = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # ---- images: search by sentence, similar pictures, duplicates, thumbnails (docs/images.md) -----
    def _image_encoder(self, config: IndexConfig | None) -> ImageModel:
        """The index's image model (or the one asked for), checked against the manifest's weights."""
        from .embed.images import load_image_model

        if self._image_model is None:
            name = self._image_model_name or (config.image_model.name if config and config.image_model else None)
            if name is None:
                raise SearcherError(f"{self.path}: this index reads no images; build it with --image-model "
                                    "efficientnet-lite0 (or a CLIP model) to index and search pictures")
            self._image_model = load_image_model(name)
        kept = config.image_model if config is not None else None
        info = self._image_model.info
        if kept is not None and (info.fingerprint != kept.fingerprint or info.dim != kept.dim):
            raise SearcherError(
                f"{self.path}: built with image model '{kept.name}' (dim {kept.dim}, weights {kept.fingerprint[:12]}), "
                f"but '{self._image_model_name}' is a different model (dim {info.dim}, weights "
                f"{info.fingerprint[:12]}); leave out --image-model or build a new index")
        return self._image_model

    def _image_config(self) -> IndexConfig:
        config = self._read_config()
        if config.image_model is None:
            raise SearcherError(f"{self.path}: this index reads no images; index the folder again with "
                                "--image-model efficientnet-lite0 (or a CLIP model) to search pictures")
        return config

    def _image_index(self, store: Store) -> VectorIndex:
        """The image vector index as of the current snapshot (opened, then caught up from SQLite)."""
        from .store import images

        self._images = images.synced(store, self.path, self._image_config().image_model.dim, self._images)
        return self._images[0]

    def _image_hits(self, store: Store, vector: Any, k: int, exclude: int | None = None) -> list[ImageHit]:
        from .store import images

        scores, ids = self._image_index(store).search(vector, k + (exclude is not None))
        found = images.rows(store, ids.tolist())
        return [ImageHit(r.doc_id, r.path, round(float(s), 4), r.width, r.height, r.taken)
                for s, i in zip(scores.tolist(), ids.tolist()) if i != exclude and (r := found.get(i))][:k]

    def search_images(self, query: str, k: int = 10) -> list[ImageHit]:
        """The ``k`` pictures that best match a sentence, best first: needs a CLIP image model (one
        that reads text); its quality is the model's."""
        _check_k(k)
        if not isinstance(query, str) or not query.strip():
            raise SearcherError("search_images: the query is empty")
        config = self._image_config()
        if not config.image_model.reads_text:
            raise SearcherError(f"{self.path}: image model '{config.image_model.name}' reads no text, so a sentence "
                                "cannot search its pictures; build the index with a CLIP --image-model for that, "
                                "or find pictures like a picture with `searcher similar PHOTO`")
        vector = self._image_encoder(config).encode_texts([query])[0]
        store = self._open_store()
        with store.snapshot():
            return self._image_hits(store, vector, k)

    def similar_images(self, image: str | Path, k: int = 10, *, indexed_only: bool = False) -> list[ImageHit]:
        """The ``k`` pictures most like ``image``: an indexed picture (its path; it is left out of the
        answer) or any image file, read and embedded with the index's image model (not with
        ``indexed_only``: what a server asks, so that a request cannot make it read other files)."""
        from .ingest.walk import read_bytes
        from .store import images

        _check_k(k)
        config = self._image_config()
        path = Path(image).expanduser()
        store = self._open_store()
        with store.snapshot():
            found = images.find(store, str(path.resolve()) if path.exists() else str(image), config.image_model.dim)
        if found is None:
            from .ingest.readers import Unreadable
            from .ingest.readers.image import read_picture

            if indexed_only:
                raise SearcherError(f"{image}: not a picture in this index")
            if not path.is_file():
                raise SearcherError(f"{image}: no such image file, and not an indexed picture")
            try:
                picture = read_picture(read_bytes(path)[0])
            except Unreadable as exc:
                raise SearcherError(f"{image}: cannot read it as an image ({exc.reason})") from None
            found = (None, self._image_encoder(config).encode_images([picture.pixels])[0])
        with store.snapshot():
            return self._image_hits(store, found[1], k, exclude=found[0])

    def duplicate_images(self, *, tiers: Sequence[str] = ("exact", "near"), hash_distance: int | None = None,
                         near_threshold: float | None = None) -> list[DuplicateGroup]:
        """Groups of near-identical pictures: *exact* (perceptual hashes within ``hash_distance``
        bits) and *near* (image vectors' cosine ≥ ``near_threshold``). Defaults are measured
        (docs/images.md)."""
        from .analyze import image_duplicates
        from .store import images

        config = self._image_config()
        store = self._open_store()
        with store.snapshot():
            rows, vectors = images.all_vectors(store, config.image_model.dim)
        return image_duplicates.find([r.path for r in rows], [r.phash for r in rows], vectors, tiers,
                                     hash_distance, near_threshold)

    def image_thumbnail(self, path: str | Path, side: int = 256) -> bytes:
        """A small JPEG of an indexed picture (longest side ``side``, 32..512): only files the index
        holds as pictures are read, so a server cannot be made to open anything else."""
        from .ingest.readers import Unreadable
        from .ingest.readers.image import thumbnail
        from .ingest.walk import read_bytes
        from .store import images

        config = self._image_config()
        store = self._open_store()
        with store.snapshot():
            found = images.find(store, str(path), config.image_model.dim)
        if found is None:
            raise SearcherError(f"{path}: not a picture in this index")
        try:
            return thumbnail(read_bytes(Path(path))[0], side)
        except Unreadable as exc:
            raise SearcherError(f"{path}: cannot read it now ({exc.reason}); index the folder again") from None

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise SearcherError(f"k must be a positive whole number, got {k!r}")


def _file_kind(path: str) -> str:
    """The reader of an indexed file, from its name (pictures: ``image``)."""
    from .ingest.readers import kind_of
    from .ingest.readers.image import is_image_name

    name = os.path.basename(path)
    return kind_of(name) or ("image" if is_image_name(name) else "text")
