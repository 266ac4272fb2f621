"""``searcher mcp``: an MCP server on stdio exposing search and index status as tools.

Built on the official ``mcp`` Python SDK (2.x ``MCPServer``; 1.x ``FastMCP`` also works).
Tools:

* ``search(query, k, mode, path, types, index)`` → hits with id, path, score, lines and text;
* ``similar(id, k, path, types, index)`` → documents like an indexed one, most alike first;
* ``index_status(index)`` → what the index holds, and the last re-index;
* ``reindex(index)`` → bring the index up to date with the folders given at start (``--folder``);
  the agent cannot name any other path.
"""
from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import Any, Literal, Optional

try:                                     # mcp >= 2
    from mcp.server.mcpserver import MCPServer as _Server
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:                      # mcp 1.x
    from mcp.server.fastmcp import FastMCP as _Server
    from mcp.server.fastmcp.exceptions import ToolError

from ..api import Searcher
from ..errors import SearcherError
from ..records import Filters


def _user_errors(fn):
    """A SearcherError reaches the agent as its one-line message (the SDK hides other exceptions)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SearcherError as exc:
            raise ToolError(str(exc)) from None
    return wrapper

MAX_K = 50


class _Index:
    def __init__(self, path: Path, model: str | None):
        self.name = path.name
        self.searcher = Searcher(path, model=model)
        self.lock = threading.Lock()        # a Searcher is not for concurrent use
        self.last_run: dict[str, Any] | None = None


def build_server(indexes: list[Path], folders: list[Path] = (), *, model: str | None = None) -> Any:
    """The MCP server object (not yet running)."""
    if not indexes:
        raise SearcherError("give at least one --index")
    handles: dict[str, _Index] = {}
    for p in indexes:
        h = _Index(Path(p).expanduser().resolve(), model)
        if h.name in handles:
            raise SearcherError(f"two indexes named '{h.name}'; give index folders with different names")
        handles[h.name] = h
    default = next(iter(handles))
    roots = [Path(f).expanduser().resolve() for f in folders]

    def pick(index: str | None) -> _Index:
        name = index or default
        if name not in handles:
            raise SearcherError(f"no index named '{name}'; choose one of: {', '.join(handles)}")
        return handles[name]

    server = _Server("searcher", instructions=(
        "Semantic search over the user's local documents. Call `search` with a question in natural language; "
        "each hit has the document id or file path, the line range and the matching text."))

    @server.tool()
    @_user_errors
    def search(query: str, k: int = 10, mode: Literal["hybrid", "dense", "keyword"] = "hybrid",
               path: Optional[str] = None, types: Optional[list[str]] = None,
               index: Optional[str] = None) -> dict[str, Any]:
        """Search the local index by meaning and keywords. `path` is a glob on file paths ('*' crosses
        folders), `types` file extensions such as ["md", "py"]; k is at most 50."""
        if not 1 <= k <= MAX_K:
            raise SearcherError(f"k must be from 1 to {MAX_K}")
        h = pick(index)
        with h.lock:
            hits = h.searcher.search(query, k=k, mode=mode, filters=Filters(path=path, types=tuple(types or ())))
        return {"index": h.name, "hits": [
            {"id": x.id, "path": x.path, "score": round(x.score, 6), "lines": list(x.lines), "page": x.page,
             "heading": x.heading, "text": x.text, "metadata": x.metadata} for x in hits]}

    @server.tool()
    @_user_errors
    def similar(id: str, k: int = 10, path: Optional[str] = None, types: Optional[list[str]] = None,
                index: Optional[str] = None) -> dict[str, Any]:
        """Documents like an indexed one ("more like this"): `id` is a document id or file path from a
        search hit, or one chunk as ID#N; `path` and `types` restrict the answer as in `search`."""
        if not 1 <= k <= MAX_K:
            raise SearcherError(f"k must be from 1 to {MAX_K}")
        h = pick(index)
        with h.lock:
            found = h.searcher.similar(id, k, filters=Filters(path=path, types=tuple(types or ())))
        return {"index": h.name, "similar": [d.to_dict() for d in found]}

    @server.tool()
    @_user_errors
    def index_status(index: Optional[str] = None) -> dict[str, Any]:
        """What the index holds (documents, chunks, model, size) and the last re-index run."""
        h = pick(index)
        with h.lock:
            info = h.searcher.info() if h.searcher.exists else {"index": str(h.searcher.path), "exists": False}
        return {"name": h.name, **info, "folders": [str(r) for r in roots], "last_reindex": h.last_run}

    if roots:
        @server.tool()
        @_user_errors
        def reindex(index: Optional[str] = None) -> dict[str, Any]:
            """Bring the index up to date with its configured folders: add new files, re-embed changed
            ones, drop deleted ones."""
            h = pick(index)
            t0 = time.time()
            with h.lock:
                summaries = [{"folder": str(r), **h.searcher.index(r).summary()} for r in roots]
            h.last_run = {"started": t0, "finished": time.time(), "folders": summaries}
            return h.last_run

    return server


def run_stdio(indexes: list[Path], folders: list[Path] = (), *, model: str | None = None) -> None:
    build_server(indexes, folders, model=model).run("stdio")
