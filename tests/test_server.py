"""The HTTP server, started for real in a subprocess on a free loopback port and spoken to over HTTP,
once per vector store (FAISS, and Milvus through milvus-lite: both indexes in one file, which only
the server process opens)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from searcher.client import Client, ClientError  # noqa: E402

from .conftest import NOTES, STORES, create_index, run_cli, store_config, write_tree  # noqa: E402

TOKEN = "test-token-123"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "SEARCHER_TOKEN": ""}


def start_server(*args: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log, "w") as out:    # a file, not a pipe: a full pipe would block the server's logging
        proc = subprocess.Popen([sys.executable, "-m", "searcher", "serve", "--port", str(port),
                                 "--log-level", "warning", *args],
                                env=server_env(), stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            httpx.get(url + "/health", timeout=2)
            return proc, url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module", params=STORES)
def server(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("srv")
    notes = write_tree(base / "notes", NOTES)
    main, scratch = base / "idx" / "main", base / "idx" / "scratch"
    if request.param != "faiss":   # `serve` creates FAISS indexes: start both in the other store
        for path in (main, scratch):
            create_index(path, store_config(request.param, base))
    proc, url = start_server("--index", str(main), "--index", str(scratch), "--folder", str(notes),
                             "--token", TOKEN, "--max-k", "50", "--max-query-chars", "500",
                             "--max-batch", "300", "--max-body", "200KB", log=base / "server.log")
    try:
        job = Client(url, token=TOKEN).reindex(wait=True, timeout=300)
        assert job["status"] == "done", job
        yield {"url": url, "proc": proc, "notes": notes, "base": base, "main": main, "scratch": scratch}
    finally:
        stop_server(proc)
        log = (base / "server.log").read_text()
        print(log[-5000:])
    assert "Traceback" not in log, log[-5000:]


def http(server, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server["url"], headers=headers, timeout=60)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# ---- basics ------------------------------------------------------------------------------------
def test_health_openapi_and_info(server):
    with http(server, token=None) as h:
        assert h.get("/health").json() == {"status": "ok", "indexes": ["main", "scratch"]}
        schema = h.get("/openapi.json").json()
    for path in ("/search", "/documents", "/documents/{doc_id}", "/index", "/index/{job_id}", "/health", "/info"):
        assert path in schema["paths"], path
    assert {"SearchIn", "SearchOut", "HitOut", "DocumentsIn", "ErrorOut", "JobOut"} <= set(
        schema["components"]["schemas"])
    with http(server) as h:
        info = h.get("/info").json()
    assert info["name"] == "main" and info["files"] == len(NOTES) and info["model"]["dim"] == 384


def test_search_returns_hits_with_positions(server):
    with http(server) as h:
        r = h.post("/search", json={"query": "how do I keep more days of logs", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["index"] == "main" and len(body["hits"]) == 3
    top = body["hits"][0]
    assert top["path"].endswith("ops/logging.md") and top["id"] == top["path"]
    assert set(top) == {"id", "path", "score", "text", "lines", "chunk", "chars", "page", "heading", "location",
                        "snippet", "snippet_line", "also", "scores", "metadata"}
    assert "logrotate" in top["text"] and top["lines"][0] >= 1 and top["chars"][1] > top["chars"][0]


def test_client_search_matches_http_and_filters(server):
    from searcher.records import Filters

    c = Client(server["url"], token=TOKEN)
    hits = c.search("sourdough", k=2, mode="keyword")
    assert hits[0].path.endswith("cooking/bread.md") and isinstance(hits[0].lines, tuple)
    with http(server) as h:
        raw = h.post("/search", json={"query": "sourdough", "k": 2, "mode": "keyword"}).json()["hits"]
    assert [x.to_dict() for x in hits] == raw
    only_py = c.search("network error", k=5, filters={"types": ["py"]})
    assert only_py and all(x.path.endswith(".py") for x in only_py)
    assert [x.id for x in c.search("network error", k=5, filters=Filters(types=("py",)))] == [x.id for x in only_py]


def test_auth(server):
    for token in (None, "wrong"):
        with http(server, token=token) as h:
            for method, path, body in (("POST", "/search", {"query": "x"}), ("GET", "/info", None),
                                       ("POST", "/documents", {"documents": [{"text": "x"}]}),
                                       ("DELETE", "/documents/x", None), ("POST", "/index", {})):
                r = h.request(method, path, json=body)
                assert r.status_code == 401, (method, path, r.text)
                assert list(r.json()) == ["error"]
    with pytest.raises(ClientError) as exc:
        Client(server["url"], token="wrong").search("logs")
    assert exc.value.status == 401


def test_non_loopback_needs_a_token(tmp_path):
    r = run_cli("serve", "--index", str(tmp_path / "i"), "--host", "0.0.0.0",
                env={"SEARCHER_TOKEN": "", "PYTHONPATH": str(REPO)})
    assert r.returncode == 1 and "token" in r.stderr and "Traceback" not in r.stderr


# ---- documents ----------------------------------------------------------------------------------
def test_add_search_delete_documents(server):
    c = Client(server["url"], token=TOKEN, index="scratch")
    ids = c.add(["The quarterly report is due on the fifth of April.", "Parrots can live for eighty years."],
                ids=["report", "parrot"], metadata=[{"team": "finance"}, {"team": "zoo"}])
    assert ids == ["report", "parrot"]
    hits = c.search("when is the report due", k=2)
    assert hits[0].id == "report" and hits[0].metadata == {"team": "finance"} and hits[0].path is None
    assert [h.id for h in c.search("report", k=5, filters={"metadata": {"team": "zoo"}})] == ["parrot"]
    assert all(h.id != "parrot" for h in Client(server["url"], token=TOKEN).search("parrots", k=10))
    assert c.delete("parrot") == 1
    assert c.delete("parrot") == 0
    with http(server) as h:
        r = h.delete("/documents/parrot", params={"index": "scratch"})
    assert r.status_code == 404 and "parrot" in r.json()["error"]
    assert all(h.id != "parrot" for h in c.search("parrots", k=10))
    c.delete("report")


def test_unknown_index_is_404(server):
    with http(server) as h:
        r = h.post("/search", json={"query": "logs", "index": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["error"]


@pytest.mark.parametrize("body,status", [
    ({"query": "logs", "k": 0}, 422),
    ({"query": "logs", "k": 51}, 422),           # over --max-k
    ({"query": "x" * 501}, 422),                 # over --max-query-chars
    ({"query": ""}, 400),                        # docs/server.md: an empty query is 400, as "   " is
    ({"query": "   "}, 400),
    ({"query": "logs", "mode": "magic"}, 422),
    ({"query": "logs", "unknown": 1}, 422),
    ({"query": "logs", "filters": {"folder": "/etc"}}, 422),
    ({"query": "logs", "rerank": "/etc/passwd"}, 400),   # only rerankers enabled at serve time
    ({"k": 3}, 422),
    ([1, 2], 422),
])
def test_search_errors_are_json_with_status(server, body, status):
    with http(server) as h:
        r = h.post("/search", json=body)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"] and "\n" not in r.json()["error"]


def test_malformed_json_and_limits(server):
    with http(server) as h:
        r = h.post("/search", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and list(r.json()) == ["error"]
        r = h.post("/documents", json={"documents": [{"text": "x" * 300_000}]})
        assert r.status_code == 413 and "body" in r.json()["error"]
        r = h.post("/documents", json={"documents": [{"text": "a"}] * 301})
        assert r.status_code == 422 and "300" in r.json()["error"]
        r = h.post("/documents", json={"documents": []})
        assert r.status_code == 422
        r = h.post("/documents", json={"documents": [{"text": "a", "id": "d"}, {"text": "b", "id": "d"}]})
        assert r.status_code == 400 and "unique" in r.json()["error"]

        def chunks():   # a streamed body without Content-Length is cut off too
            for _ in range(30):
                yield b" " * 10_000
        r = h.post("/documents", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert h.get("/nowhere").status_code == 404 and "error" in h.get("/nowhere").json()
        assert h.put("/search").status_code == 405


# ---- paths: nothing outside the configured folders is read or written ----------------------------
TRAVERSALS = ["../../escape.txt", "../../../../../../tmp/escape.txt", "/etc/passwd", "..", ".",
              "notes/../../escape", "..%2F..%2Fescape", "\\..\\..\\escape", "~/escape", "file:///etc/passwd"]


def test_ids_are_never_paths(server):
    base = server["base"]
    before = files_under(base)
    c = Client(server["url"], token=TOKEN, index="scratch")
    ids = c.add([f"traversal probe {i}" for i in range(len(TRAVERSALS))], ids=TRAVERSALS)
    assert ids == TRAVERSALS
    hits = c.search("traversal probe", k=len(TRAVERSALS))
    assert {h.id for h in hits} == set(TRAVERSALS) and all(h.path is None for h in hits)
    after = files_under(base)
    assert {p for p in after - before if not p.is_relative_to(server["scratch"])} == set()
    assert not (base.parent / "escape.txt").exists() and not Path("/tmp/escape.txt").exists()
    assert c.delete(TRAVERSALS) == len(TRAVERSALS)
    assert Path("/etc/passwd").exists()


def test_delete_by_path_only_touches_the_index(server):
    target = server["notes"] / "garden" / "tomatoes.rst"
    with http(server) as h:
        r = h.delete("/documents/" + str(target).lstrip("/"))      # relative: not an id in the index
        assert r.status_code == 404
        r = h.delete("/documents/../../" + str(target).lstrip("/"))
        assert r.status_code == 404
        r = h.delete("/documents/%2F" + str(target).lstrip("/"))
        assert r.status_code == 200, r.text
    assert target.exists()                                          # the file is never touched
    assert all(not (x.path or "").endswith("tomatoes.rst")
               for x in Client(server["url"], token=TOKEN).search("tomato plants", k=10))
    job = Client(server["url"], token=TOKEN).reindex(wait=True)     # an index run puts it back
    assert job["status"] == "done" and job["summary"][0]["added"] == 1


def test_index_request_cannot_name_a_folder(server):
    with http(server) as h:
        for body in ({"folder": "/etc"}, {"path": "../.."}, {"index": "main", "folders": ["/"]}):
            r = h.post("/index", json=body)
            assert r.status_code == 422, r.text
        r = h.post("/index", json={"index": "../main"})
        assert r.status_code == 404
        assert h.get("/index/..%2F..%2Fetc%2Fpasswd").status_code == 404
        assert h.get("/index/nope").json() == {"error": "no index job 'nope'"}


# ---- index jobs -------------------------------------------------------------------------------
def test_index_job_runs_in_background_with_status_url(server):
    notes = server["notes"]
    (notes / "new.md").write_text("# Kites\n\nFly kites on windy afternoons at the beach.\n")
    try:
        with http(server) as h:
            r = h.post("/index")
            assert r.status_code == 202, r.text
            job = r.json()
            assert job["status_url"] == f"/index/{job['id']}" and job["folders"] == [str(notes.resolve())]
            deadline = time.monotonic() + 120
            while job["status"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.1)
                job = h.get(job["status_url"]).json()
        assert job["status"] == "done", job
        assert job["summary"][0]["added"] == 1
        hits = Client(server["url"], token=TOKEN).search("kites on a windy day", k=1)
        assert hits[0].path.endswith("new.md")
    finally:
        (notes / "new.md").unlink()
        Client(server["url"], token=TOKEN).reindex(wait=True)


def test_writer_in_another_process_gives_409(server):
    from searcher.store.locking import WriterLock

    with WriterLock(server["scratch"]):      # its own open file description: flock conflicts as with a process
        with http(server) as h:
            r = h.post("/documents", json={"index": "scratch", "documents": [{"text": "blocked"}]})
            assert r.status_code == 409 and "another process" in r.json()["error"]
            assert r.headers["retry-after"] == "1"
            assert h.post("/search", json={"query": "logs", "index": "scratch"}).status_code == 200


# ---- concurrency ------------------------------------------------------------------------------
def test_concurrent_searches_see_whole_commits(server):
    """Batches of 4 documents are added and deleted in one request each while searches run; a search
    filtered to one batch sees all 4 documents or none, never some."""
    c = Client(server["url"], token=TOKEN, index="scratch")
    stop = threading.Event()
    problems: list[str] = []
    counts: list[int] = []

    def writer():
        try:
            for b in range(6):
                c.add([f"batch {b} document {i} about lighthouses and ships" for i in range(4)],
                      ids=[f"b{b}-{i}" for i in range(4)], metadata=[{"batch": b}] * 4)
                if b:
                    c.delete([f"b{b - 1}-{i}" for i in range(4)])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"writer: {exc!r}")
        finally:
            stop.set()

    def reader():
        r = Client(server["url"], token=TOKEN, index="scratch")
        while not stop.is_set():
            for b in range(6):
                try:
                    n = len(r.search("lighthouses and ships", k=10, filters={"metadata": {"batch": b}}))
                except Exception as exc:  # noqa: BLE001
                    problems.append(repr(exc))
                    continue
                counts.append(n)
                if n not in (0, 4):
                    problems.append(f"batch {b}: {n} of 4 documents")

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not problems, problems[:5]
    assert 4 in counts and len(counts) > 20
    c.delete([f"b5-{i}" for i in range(4)])


# ---- fuzzing the published schema: no input gives a 5xx ------------------------------------------
def from_schema(schema: dict, components: dict, st, depth: int = 0):
    """A hypothesis strategy for the JSON Schema subset pydantic publishes ($ref, anyOf, enum, object,
    array, string, integer, number, boolean, null, free-form {}). (hypothesis-jsonschema does not work
    with the installed hypothesis, so this small walker stands in for it.)"""
    if "$ref" in schema:
        return from_schema(components[schema["$ref"].rsplit("/", 1)[1]], components, st, depth)
    if "anyOf" in schema:
        return st.one_of([from_schema(s, components, st, depth) for s in schema["anyOf"]])
    if "enum" in schema or "const" in schema:
        return st.sampled_from(schema.get("enum") or [schema["const"]])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props, required = schema["properties"], set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, components, st, depth + 1) for k, v in props.items() if k in required},
            optional={k: from_schema(v, components, st, depth + 1) for k, v in props.items() if k not in required})
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), components, st, depth + 1),
                        min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 80), 80))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    if kind == "object":
        return st.dictionaries(st.text(max_size=10), leaves, max_size=3)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=10), inner, max_size=3), max_leaves=6)


@pytest.mark.parametrize("path,model,examples", [("/search", "SearchIn", 40), ("/documents", "DocumentsIn", 15),
                                                 ("/documents/delete", "DeleteIn", 15), ("/index", "IndexIn", 5)])
def test_fuzz_openapi_bodies_never_5xx(server, path, model, examples):
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    with http(server) as h:
        openapi = h.get("/openapi.json").json()
    components = openapi["components"]["schemas"]
    schema = components[model]
    valid = from_schema(schema, components, st)
    json_values = from_schema({}, components, st)
    shuffled = st.dictionaries(st.sampled_from(list(schema.get("properties", {})) + ["x"]), json_values, max_size=4)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), derandomize=True)
    @given(body=valid | shuffled | json_values)
    def check(body):
        if isinstance(body, dict) and path != "/search":
            body = {**body, "index": "scratch"} if "index" not in body or body["index"] is not None else body
        with http(server) as h:
            r = h.post(path, json=body)
        assert r.status_code < 500, (body, r.status_code, r.text)
        assert "error" in r.json() if r.status_code >= 400 else True

    check()


def test_fuzz_paths_and_queries_never_5xx(server):
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              derandomize=True)
    @given(doc_id=st.text(min_size=1, max_size=60), index=st.none() | st.text(max_size=20))
    def check(doc_id, index):
        from urllib.parse import quote

        with http(server) as h:
            params = {"index": index} if index is not None else {}
            for r in (h.delete("/documents/" + quote(doc_id, safe=""), params={**params, "index": "scratch"}),
                      h.get("/index/" + quote(doc_id, safe="")), h.get("/info", params=params)):
                assert r.status_code < 500, (doc_id, index, r.status_code, r.text)

    check()


# ---- graceful shutdown (runs last: it stops the module's server) ---------------------------------
def test_zz_graceful_shutdown_finishes_in_flight_requests(server):
    proc = server["proc"]
    c = Client(server["url"], token=TOKEN, index="scratch", timeout=120)
    result: dict = {}

    def slow_add():
        try:
            result["ids"] = c.add([f"shutdown probe {i} " + "words " * 150 for i in range(40)],
                                  ids=[f"sd{i}" for i in range(40)])
        except Exception as exc:  # noqa: BLE001
            result["error"] = exc

    t = threading.Thread(target=slow_add)
    t.start()
    time.sleep(0.3)                       # the request is in flight: embedding 40 texts takes a while
    proc.send_signal(signal.SIGTERM)
    t.join(120)
    assert result.get("ids") == [f"sd{i}" for i in range(40)], result
    assert proc.wait(60) in (0, -signal.SIGTERM)   # uvicorn re-raises the signal after a clean shutdown
