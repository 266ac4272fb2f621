"""searcher: local-first semantic search over a folder of your own documents.

``Searcher`` is the façade; ``Hit`` the result record. Both are imported lazily so that
``import searcher`` (and the CLI's start-up) stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Searcher", "Hit", "IndexReport", "FileReport", "SearcherError", "WalkOptions"]

if TYPE_CHECKING:
    from .api import Searcher
    from .errors import SearcherError
    from .ingest.walk import WalkOptions
    from .records import FileReport, Hit, IndexReport


def __getattr__(name: str) -> Any:
    if name == "Searcher":
        from .api import Searcher
        return Searcher
    if name == "SearcherError":
        from .errors import SearcherError
        return SearcherError
    if name == "WalkOptions":
        from .ingest.walk import WalkOptions
        return WalkOptions
    if name in ("Hit", "IndexReport", "FileReport"):
        from . import records
        return getattr(records, name)
    raise AttributeError(name)
