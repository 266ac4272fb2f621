"""``searcher serve``: an HTTP API (FastAPI + uvicorn) over one or more indexes.

Concurrency model
-----------------
* One loaded model per process: every ``Searcher`` here gets its encoder from
  ``searcher.embedding.load_encoder``'s process-wide cache.
* Reads: a small pool of read-only ``Searcher`` objects per index (a ``Searcher`` holds an
  in-memory FAISS index and a SQLite connection and is not safe to share between threads). A
  request checks one out, searches inside a SQLite read transaction, and puts it back; a search
  therefore sees one commit, never half of one, and catches up with newer commits by itself.
* Writes (``POST /documents``, ``DELETE /documents/{id}``, ``POST /index``): one writer
  ``Searcher`` per index behind a lock; the file lock inside ``Searcher`` refuses a writer in
  another process (HTTP 409).
* Watching (``--watch FOLDER``): a thread per folder runs a ``FolderWatcher`` whose runs take the
  writer lock like any write; searches meanwhile see the last commit.
* Shutdown: uvicorn stops accepting connections and finishes in-flight requests; watchers stop, a
  running index job is waited for (bounded), and every batch it committed survives anyway.

The page: ``GET /`` is a search page (searcher/interfaces/web: plain HTML, CSS and JavaScript,
served from the package, nothing from the network) that uses the endpoints below like any client.

Safety: binds 127.0.0.1 by default; a bearer token (``--token`` / ``$SEARCHER_TOKEN``) is required
to bind anything else; limits on query length, k, batch size and body size; ``POST /index`` indexes
only the folders given to ``serve --folder`` — no request names a path, and document ids are
opaque keys in the index, never opened as files.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import tempfile
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import LockedError, SearcherError
from ..records import Filters
from ..search.snippets import make_snippet
from .schemas import (
    ERRORS,
    ApiError,
    DeleteIn,
    DeleteManyOut,
    DeleteOut,
    DocumentOut,
    DocumentsIn,
    DocumentsOut,
    DuplicatesIn,
    DuplicatesOut,
    FiltersIn,
    HealthOut,
    HitOut,
    ImageDuplicatesIn,
    ImageSearchIn,
    ImageSimilarIn,
    ImagesOut,
    IndexIn,
    JobOut,
    MapIn,
    OutliersIn,
    OutliersOut,
    SearchIn,
    SearchOut,
    SimilarIn,
    SimilarOut,
    TopicsIn,
    TopicsOut,
)
from .server_state import Limits, State

log = logging.getLogger("searcher.server")
TOKEN_ENV = "SEARCHER_TOKEN"
WEB = Path(__file__).resolve().parent / "web"
# the page's files, by the name it asks for: nothing else is ever served from disk
WEB_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
# the page loads only its own files and talks only to this server; no page may frame it
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                "img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
                "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}




# ---- body-size limit (Content-Length and streamed bodies) --------------------------------------
class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await _send_error(send, 413, f"request body over {self.max_bytes} bytes")
        # read the body here (it is small, by the limit) so that an oversized stream gets a clean 413
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await _send_error(send, 413, f"request body over {self.max_bytes} bytes")
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()
        await self.app(scope, replay, send)


async def _send_error(send: Send, status: int, message: str) -> None:
    import json

    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:1000] or "error"


# ---- the app -----------------------------------------------------------------------------------
def create_app(indexes: list[Path], folders: list[Path] = (), *, token: str | None = None,
               limits: Limits = Limits(), model: str | None = None, rerankers: list[str] = (),
               shutdown_wait: float = 30.0, watch: list[Path] = ()) -> FastAPI:
    state = State(list(indexes), list(folders), token, limits, model, list(rerankers), list(watch))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start_watchers()
        yield
        import anyio.to_thread
        await anyio.to_thread.run_sync(state.stop_watchers, shutdown_wait)
        await anyio.to_thread.run_sync(state.wait_for_jobs, shutdown_wait)
        state.close()

    app = FastAPI(title="searcher", version="1", lifespan=lifespan,
                  description="Local-first semantic search: search, add and delete documents, re-index folders.")
    app.state.searcher = state
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": _one_line(exc.message)}, status_code=exc.status)

    @app.exception_handler(LockedError)
    async def _locked(request: Request, exc: LockedError):
        return JSONResponse({"error": _one_line(str(exc))}, status_code=409, headers={"Retry-After": "1"})

    @app.exception_handler(SearcherError)
    async def _searcher_error(request: Request, exc: SearcherError):
        status = 404 if str(exc).startswith("no index at") else 400
        return JSONResponse({"error": _one_line(str(exc))}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors()[:3]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"error": _one_line("; ".join(parts) or "invalid request")}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": _one_line(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    def auth(request: Request) -> None:
        if state.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), state.token.encode()):
            raise ApiError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>'")

    guarded = [Depends(auth)]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The search page (no token needed: it holds no data; it asks for the token when the API does)."""
        return FileResponse(WEB / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/ui/{name}", include_in_schema=False)
    def page_file(name: str) -> FileResponse:
        if name not in WEB_FILES:
            raise ApiError(404, f"no page file '{name[:100]}'")
        return FileResponse(WEB / name, media_type=WEB_FILES[name], headers=PAGE_HEADERS)

    @app.get("/health", response_model=HealthOut, tags=["status"])
    def health() -> HealthOut:
        """Liveness: the server answers (no token needed)."""
        return HealthOut(status="ok", indexes=list(state.handles))

    @app.get("/info", dependencies=guarded, responses=ERRORS, tags=["status"])
    def info(index: Optional[str] = Query(None, max_length=200)) -> dict[str, Any]:
        """What an index holds: documents, chunks, model, ANN type, size on disk, and ``last_run``: the
        last index job's or watch run's summary in this server (null before the first)."""
        h = state.handle(index)
        with h.reader() as s:
            return {"name": h.name, **s.info(), "last_run": h.last_run,
                    "watching": [str(f) for f in state.watch] if h.name == state.default else []}

    @app.get("/files", dependencies=guarded, responses=ERRORS, tags=["status"])
    def files(index: Optional[str] = Query(None, max_length=200),
              limit: int = Query(1000, ge=0, le=1_000_000, description="Indexed documents to list at most.")
              ) -> dict[str, Any]:
        """What is indexed (id, source, reader kind, chunks) and the files the last runs skipped, with why."""
        h = state.handle(index)
        with h.reader() as s:
            out = s.files()
        return {"name": h.name, "total": len(out["indexed"]), "truncated": len(out["indexed"]) > limit,
                "indexed": out["indexed"][:limit], "skipped": out["skipped"]}

    @app.get("/documents/{doc_id:path}", response_model=DocumentOut, dependencies=guarded, responses=ERRORS,
             tags=["documents"])
    def get_document(doc_id: str, index: Optional[str] = Query(None, max_length=200)) -> DocumentOut:
        """One document's text as the index holds it (rebuilt from its chunks; the file is never read)."""
        h = state.handle(index)
        with h.reader() as s:
            found = s.get([doc_id])
        if not found:
            raise ApiError(404, f"no document with id '{doc_id[:200]}' in index '{h.name}'")
        d = found[0]
        return DocumentOut(index=h.name, id=d.id, path=d.path, kind=d.kind, text=d.text, size=d.size,
                           mtime=d.mtime_ns / 1e9, metadata=d.metadata)

    @app.post("/search", response_model=SearchOut, dependencies=guarded, responses=ERRORS, tags=["search"],
              response_model_exclude_unset=True)   # snippet fields only when asked for
    def search(body: SearchIn) -> SearchOut:
        """The k chunks that best answer the query, best first."""
        lim = state.limits
        if len(body.query) > lim.max_query_chars:
            raise ApiError(422, f"query: at most {lim.max_query_chars} characters")
        if body.k > lim.max_k:
            raise ApiError(422, f"k: at most {lim.max_k}")
        if body.rerank is not None and body.rerank not in state.rerankers:
            raise ApiError(400, f"rerank '{body.rerank}' is not enabled on this server (start it with --rerank)")
        h = state.handle(body.index)
        t0 = time.perf_counter()
        with h.reader() as s:
            hits = s.search(body.query, k=body.k, mode=body.mode, filters=_filters(body.filters),
                            group_by_file=body.group_by_file,
                            min_score=body.min_score, rerank=body.rerank, fusion=body.fusion, feedback=body.feedback)
        out = [HitOut(**hit.to_dict()) for hit in hits]
        if body.snippets:
            for o, hit in zip(out, hits):
                snip = make_snippet(hit.text, body.query)
                o.snippet, o.snippet_marks = snip.text, [list(m) for m in snip.marks]
        return SearchOut(index=h.name, hits=out, took_ms=round((time.perf_counter() - t0) * 1000, 3))

    # ---- analyze (docs/analyze.md) ----------------------------------------------------------------
    def check_k(k: int) -> None:
        if k > state.limits.max_k:
            raise ApiError(422, f"k: at most {state.limits.max_k}")

    @app.post("/similar", response_model=SimilarOut, dependencies=guarded, responses=ERRORS, tags=["analyze"])
    def similar(body: SimilarIn) -> SimilarOut:
        """Documents like an indexed document (or chunk ID#N), most alike first."""
        check_k(body.k)
        h = state.handle(body.index)
        with h.reader() as s:
            found = s.similar(body.id, body.k, filters=_filters(body.filters))
        return SimilarOut(index=h.name, similar=[d.to_dict() for d in found])

    @app.post("/duplicates", response_model=DuplicatesOut, dependencies=guarded, responses=ERRORS, tags=["analyze"])
    def duplicates(body: DuplicatesIn) -> DuplicatesOut:
        """Groups of documents (or chunks) that say the same thing: exact, near and semantic tiers."""
        h = state.handle(body.index)
        with h.reader() as s:
            groups = s.duplicates(tiers=body.tiers, chunks=body.chunks, threshold=body.threshold,
                                  near_threshold=body.near_threshold, filters=_filters(body.filters))
        return DuplicatesOut(index=h.name, groups=[g.to_dict() for g in groups])

    @app.post("/outliers", response_model=OutliersOut, dependencies=guarded, responses=ERRORS, tags=["analyze"])
    def outliers(body: OutliersIn) -> OutliersOut:
        """The documents least like the rest, most unusual first."""
        check_k(body.k)
        h = state.handle(body.index)
        with h.reader() as s:
            found = s.outliers(body.k, filters=_filters(body.filters))
        return OutliersOut(index=h.name, outliers=[o.to_dict() for o in found])

    @app.post("/topics", response_model=TopicsOut, dependencies=guarded, responses=ERRORS, tags=["analyze"])
    def topics(body: TopicsIn) -> TopicsOut:
        """The collection's topics, largest first."""
        h = state.handle(body.index)
        with h.reader() as s:
            found = s.topics(body.n, filters=_filters(body.filters))
        return TopicsOut(index=h.name, topics=[t.to_dict() for t in found])

    @app.post("/map", dependencies=guarded, tags=["analyze"], response_class=Response,
              responses={**ERRORS, 200: {"content": {"text/html": {}, "image/png": {}},
                                         "description": "The map: a self-contained HTML page or a PNG."}})
    def corpus_map(body: MapIn) -> Response:
        """A map of the collection: every document a point, near points alike, topics labelled."""
        h = state.handle(body.index)
        with tempfile.TemporaryDirectory() as tmp, h.reader() as s:
            out = Path(tmp) / f"map.{body.format}"
            s.map(out, color_by=body.color_by, topics=body.n, filters=_filters(body.filters))
            data = out.read_bytes()
        return Response(data, media_type="text/html" if body.format == "html" else "image/png")

    # ---- images (docs/images.md) ------------------------------------------------------------------
    @app.post("/images/search", response_model=ImagesOut, dependencies=guarded, responses=ERRORS, tags=["images"])
    def search_images(body: ImageSearchIn) -> ImagesOut:
        """Pictures matching a sentence (an index with a CLIP image model), best first."""
        check_k(body.k)
        if len(body.query) > state.limits.max_query_chars:
            raise ApiError(422, f"query: at most {state.limits.max_query_chars} characters")
        h = state.handle(body.index)
        with h.reader() as s:
            found = s.search_images(body.query, body.k)
        return ImagesOut(index=h.name, images=[x.to_dict() for x in found])

    @app.post("/images/similar", response_model=ImagesOut, dependencies=guarded, responses=ERRORS, tags=["images"])
    def similar_images(body: ImageSimilarIn) -> ImagesOut:
        """Pictures like an indexed picture, most alike first (only indexed pictures are read)."""
        check_k(body.k)
        h = state.handle(body.index)
        with h.reader() as s:
            found = s.similar_images(body.path, body.k, indexed_only=True)
        return ImagesOut(index=h.name, images=[x.to_dict() for x in found])

    @app.post("/images/duplicates", response_model=DuplicatesOut, dependencies=guarded, responses=ERRORS,
              tags=["images"])
    def duplicate_images(body: ImageDuplicatesIn) -> DuplicatesOut:
        """Groups of near-identical pictures: exact (perceptual hash) and near (image-vector cosine) tiers."""
        h = state.handle(body.index)
        with h.reader() as s:
            groups = s.duplicate_images(tiers=body.tiers, hash_distance=body.hash_distance,
                                        near_threshold=body.near_threshold)
        return DuplicatesOut(index=h.name, groups=[g.to_dict() for g in groups])

    @app.get("/images/thumbnail", dependencies=guarded, tags=["images"], response_class=Response,
             responses={**ERRORS, 200: {"content": {"image/jpeg": {}}, "description": "A small JPEG."}})
    def thumbnail(path: str = Query(..., min_length=1, max_length=4096),
                  side: int = Query(256, ge=32, le=512, description="Longest side, in pixels."),
                  index: Optional[str] = Query(None, max_length=200)) -> Response:
        """A small JPEG of an indexed picture (only pictures the index holds are read)."""
        h = state.handle(index)
        with h.reader() as s:
            data = s.image_thumbnail(path, side)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    @app.post("/documents", response_model=DocumentsOut, dependencies=guarded, responses=ERRORS,
              tags=["documents"])
    def add_documents(body: DocumentsIn) -> DocumentsOut:
        """Add (or replace, by id) texts with ids and metadata."""
        lim = state.limits
        if len(body.documents) > lim.max_batch:
            raise ApiError(422, f"documents: at most {lim.max_batch} per request")
        for d in body.documents:
            if len(d.text) > lim.max_text_chars:
                raise ApiError(422, f"documents: a text has more than {lim.max_text_chars} characters")
        ids = [d.id or uuid.uuid4().hex for d in body.documents]
        h = state.handle(body.index)
        with h.writing(lim.writer_wait) as s:
            done = s.add([d.text for d in body.documents], ids=ids, metadata=[d.metadata for d in body.documents])
        return DocumentsOut(index=h.name, ids=done)

    @app.delete("/documents/{doc_id:path}", response_model=DeleteOut, dependencies=guarded, responses=ERRORS,
                tags=["documents"])
    def delete_document(doc_id: str, index: Optional[str] = Query(None, max_length=200)) -> DeleteOut:
        """Remove one document from the index by id (an added id, or an indexed file's path). The file
        itself, if any, is never touched."""
        h = state.handle(index)
        with h.writing(state.limits.writer_wait) as s:
            n = s.delete([doc_id])
        if n == 0:
            raise ApiError(404, f"no document with id '{doc_id[:200]}' in index '{h.name}'")
        return DeleteOut(index=h.name, id=doc_id, deleted=n)

    @app.post("/documents/delete", response_model=DeleteManyOut, dependencies=guarded, responses=ERRORS,
              tags=["documents"])
    def delete_documents(body: DeleteIn) -> DeleteManyOut:
        """Remove several documents by id in one commit; returns how many existed."""
        if len(body.ids) > state.limits.max_batch:
            raise ApiError(422, f"ids: at most {state.limits.max_batch} per request")
        h = state.handle(body.index)
        with h.writing(state.limits.writer_wait) as s:
            n = s.delete(body.ids)
        return DeleteManyOut(index=h.name, deleted=n)

    @app.post("/index", response_model=JobOut, status_code=202, dependencies=guarded, responses=ERRORS,
              tags=["index"])
    def start_index(body: Optional[IndexIn] = None) -> JobOut:
        """Re-index the server's configured folders incrementally, in the background. Returns a job whose
        status_url reports progress; a run already going for this index is returned instead of a new one."""
        h = state.handle(body.index if body else None)
        return state.start_job(h).out()

    @app.get("/index/{job_id}", response_model=JobOut, dependencies=guarded, responses=ERRORS, tags=["index"])
    def job_status(job_id: str) -> JobOut:
        """Status of an index job."""
        job = state.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no index job '{job_id[:100]}'")
        return job.out()

    return app


def _filters(f: FiltersIn | None) -> Filters | None:
    if f is None:
        return None
    return Filters(path=f.path, types=tuple(f.types), modified_after=f.modified_after,
                   modified_before=f.modified_before, metadata=f.metadata)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(indexes: list[Path], folders: list[Path], *, host: str = "127.0.0.1", port: int = 8765,
          token: str | None = None, limits: Limits = Limits(), model: str | None = None,
          rerankers: list[str] = (), log_level: str = "info", warm: bool = True, watch: list[Path] = (),
          open_page: bool = False) -> None:
    """Run the server until SIGINT/SIGTERM; in-flight requests finish first. ``watch``: folders the
    first index follows; ``open_page``: open the search page in a browser once the server is up."""
    import uvicorn

    token = token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and not token:
        raise SearcherError(f"--host {host} is not a loopback address: set a token with --token or "
                            f"${TOKEN_ENV} so strangers cannot read or change your index")
    app = create_app(indexes, folders, token=token, limits=limits, model=model, rerankers=rerankers, watch=watch)
    if warm:   # load the query encoder and vectors once, before the first request
        state: State = app.state.searcher
        h = state.handles[state.default]
        try:
            with h.reader() as s:
                s.warm()
            if watch:   # the model that embeds a saved file, loaded before serving (an import holds the GIL)
                h.writer.warm(writing=True)
        except SearcherError as exc:
            log.warning("%s", exc)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30,
                            limit_concurrency=256, server_header=False)
    server = uvicorn.Server(config)
    if open_page:
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        threading.Thread(target=_open_when_up, args=(server, url), daemon=True).start()
    server.run()


def _open_when_up(server: Any, url: str) -> None:
    """Open ``url`` in the user's browser once uvicorn listens (within a minute)."""
    import webbrowser

    for _ in range(600):
        if server.started:
            if not webbrowser.open(url):
                log.warning("no browser found to open; the page is at %s", url)
            return
        time.sleep(0.1)
