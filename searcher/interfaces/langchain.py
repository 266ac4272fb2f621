"""LangChain adapter: a ``VectorStore`` (and so a retriever) backed by a searcher index.

Needs the ``langchain`` extra (``pip install 'searcher[langchain]'``).

Embeddings: an index is embedded by its own sentence-transformers model, the one its manifest
records (all-MiniLM-L6-v2 unless ``model=`` chose another when the index was created), and so is
every query. A LangChain ``Embeddings`` object would put vectors from another model next to the
index's, so ``from_texts``/``from_documents`` refuse one instead of silently ignoring it: pass
``embedding=None``. LangChain's standard tests only ask that the documents be ranked by *a*
sensible similarity (a text searched for itself comes first), which the real model does.

Documents and chunks: a LangChain ``Document`` is one searcher document — its ``id`` is the
document id, its ``metadata`` is stored with it and filters searches. Searcher cuts a long text
into chunks and ranks chunks; a search returns, by default, one ``Document`` per document
whose ``page_content`` is its best-matching chunk, which is the whole text whenever the text
fits in one chunk (about 250 model tokens). ``get_by_ids`` returns whole texts (rebuilt from
their chunks, see ``Searcher.get``). Hits from indexed files carry ``source`` (the file path)
and ``location`` (line, page or heading) in their metadata.

Async methods are LangChain's defaults, which run the sync ones in a thread pool; a lock keeps
those threads from using the one ``Searcher`` at the same time.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from ..api import Searcher
from ..errors import SearcherError
from ..records import Filters, Hit
from ..search.query import Mode

# Searcher.search options a LangChain caller may pass (as keyword arguments or retriever search_kwargs).
_SEARCH_OPTIONS = frozenset({"mode", "fusion", "feedback", "rerank", "min_score", "group_by_file"})


class SearcherVectorStore(VectorStore):
    """A LangChain vector store over one searcher index folder.

    >>> store = SearcherVectorStore("indexes/notes")              # doctest: +SKIP
    >>> store.add_texts(["Logs rotate nightly."], [{"team": "ops"}])  # doctest: +SKIP
    >>> store.as_retriever(search_kwargs={"k": 3, "filter": {"team": "ops"}})  # doctest: +SKIP
    """

    def __init__(self, index: Searcher | str | Path | None = None, *, model: str | None = None,
                 mode: Mode = "hybrid"):
        """``index``: a ``Searcher`` or an index folder (created on the first add; None: the default
        index). ``model`` chooses the model of a new index. ``mode``: how searches rank by default
        ("hybrid", "dense" or "keyword", as in ``Searcher.search``)."""
        if isinstance(index, Searcher):
            if model is not None:
                raise SearcherError("model: give it to the Searcher you pass, not to SearcherVectorStore")
            self.searcher = index
        else:
            self.searcher = Searcher(index, model=model)
        self.mode = mode
        self._lock = threading.Lock()

    # ---- writing -------------------------------------------------------------------------------
    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        """Add or replace texts; a text under an id already in the index replaces that document.
        Returns the ids, new random ones where none (or None) is given."""
        _no_extra("add_texts", kwargs)
        texts = list(texts)
        given = list(ids) if ids is not None else [None] * len(texts)
        if len(given) != len(texts):
            raise SearcherError(f"add_texts(): got {len(texts)} texts and {len(given)} ids")
        doc_ids = [str(i) if i is not None else uuid.uuid4().hex for i in given]
        with self._lock:
            return self.searcher.add(texts, doc_ids, metadatas)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Remove documents by id (ids not in the index are ignored); ``ids=None`` removes all."""
        _no_extra("delete", kwargs)
        with self._lock:
            if not self.searcher.exists:
                return True
            if ids is None:
                ids = [d["id"] for d in self.searcher.files()["indexed"]]
            if ids:
                self.searcher.delete(ids)
        return True

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                   metadatas: list[dict[str, Any]] | None = None, *, ids: list[str] | None = None,
                   index: Searcher | str | Path | None = None, model: str | None = None,
                   mode: Mode = "hybrid", **kwargs: Any) -> SearcherVectorStore:
        """Add texts to the index folder ``index`` and return a store over it. ``embedding`` must be
        None: the index embeds with its own model (see the module docstring)."""
        if embedding is not None:
            raise SearcherError("embedding: searcher embeds with its index's own model; pass embedding=None "
                                "(and model='...' to choose the model of a new index)")
        store = cls(index, model=model, mode=mode)
        store.add_texts(texts, metadatas, ids=ids, **kwargs)
        return store

    # ---- reading -------------------------------------------------------------------------------
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, whole; ids not in the index are left out."""
        with self._lock:
            if not self.searcher.exists:
                return []
            docs = self.searcher.get(ids)
        return [Document(id=d.id, page_content=d.text, metadata=_metadata(d.metadata, d.path)) for d in docs]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` best documents for ``query`` with their scores, best first.

        ``filter``: metadata key → value (or a list: any of them), all keys must match.
        Further keyword arguments: ``filters`` (a ``Filters`` or dict: path glob, types, modified
        times, metadata) and the ``Searcher.search`` options mode, fusion, feedback, rerank,
        min_score and group_by_file (default True: one hit per document). Scores are those of
        ``Searcher.search``: cosine similarity in dense mode, 0..1 in hybrid mode (README, Scores)."""
        return [(_document(h), h.score) for h in self._search(query, k, filter, kwargs)]

    def _similarity_search_with_relevance_scores(self, query: str, k: int = 4,
                                                 **kwargs: Any) -> list[tuple[Document, float]]:
        """Relevance in [0, 1] for LangChain's score thresholds: the dense cosine similarity (clipped
        at 0), the one score with a fixed scale, so these searches always run in dense mode."""
        if kwargs.setdefault("mode", "dense") != "dense":
            raise SearcherError(f"mode: relevance scores come from dense search, not {kwargs['mode']!r}; "
                                "leave out mode or use similarity_search_with_score")
        return [(_document(h), max(0.0, min(1.0, h.score)))
                for h in self._search(query, k, kwargs.pop("filter", None), kwargs)]

    def _search(self, query: str, k: int, filter: dict[str, Any] | None, options: dict[str, Any]) -> list[Hit]:
        unknown = set(options) - _SEARCH_OPTIONS - {"filters"}
        if unknown:
            raise SearcherError(f"unknown search argument(s) {', '.join(sorted(unknown))}; use k, filter, "
                                f"filters or {', '.join(sorted(_SEARCH_OPTIONS))}")
        filters = options.pop("filters", None)
        if filter:
            filters = dict(vars(filters) if isinstance(filters, Filters) else filters or {})
            metadata = dict(filters.get("metadata") or {})
            if both := set(metadata) & set(filter):
                raise SearcherError(f"filter: metadata '{sorted(both)[0]}' is also in filters; give it once")
            filters["metadata"] = {**metadata, **filter}
        with self._lock:
            if not self.searcher.exists:
                return []
            # each LangChain document is its own result, even when two hold the same text
            options = {"mode": self.mode, "group_by_file": True, "fold_identical": False, **options}
            return self.searcher.search(query, k, filters=filters, **options)

    def close(self) -> None:
        with self._lock:
            self.searcher.close()


def _no_extra(method: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise SearcherError(f"{method}(): unknown argument(s) {', '.join(sorted(kwargs))}")


def _metadata(metadata: dict[str, Any], path: str | None, location: str = "") -> dict[str, Any]:
    """Stored metadata; for indexed files also the ``source`` path (LangChain's usual key)."""
    if path is None:
        return dict(metadata)
    return {**metadata, "source": path, **({"location": location} if location else {})}


def _document(hit: Hit) -> Document:
    return Document(id=hit.id, page_content=hit.text, metadata=_metadata(hit.metadata, hit.path,
                                                                          hit.location().strip()))
