"""Milvus as the vector store: a real Milvus standalone server on 127.0.0.1 (PyPI ``milvus``), and
milvus-lite files; consistency with SQLite across a killed run; migration both ways."""
from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import pytest

from searcher import Searcher, SearcherError
from searcher.vectors import saved_files
from searcher.vectorstores import VectorStoreConfig, milvus_config

from .conftest import run_cli
from .test_crash_and_locking import _big_folder, _generation, _start_index, _wait_for_commit

pymilvus = pytest.importorskip("pymilvus")
QUERIES = ["how do I rotate the logs", "baking sourdough", "watering tomato plants", "retry on network errors"]


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory) -> str:
    """A Milvus 2.3 standalone server (the binary shipped in the PyPI package ``milvus``)."""
    server_module = pytest.importorskip("milvus")
    server = server_module.default_server
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    server.start()
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()


def _sqlite_chunk_ids(idx: Path) -> set[int]:
    with sqlite3.connect(idx / "searcher.db") as c:
        return {r[0] for r in c.execute("SELECT id FROM chunks")}


def _milvus_ids(idx: Path) -> set[int]:
    """The chunk ids the index's Milvus collection holds, read with a client of our own."""
    store = json.loads((idx / "manifest.json").read_text())["vector_store"]
    client = pymilvus.MilvusClient(store["uri"])
    client.load_collection(store["collection"])
    rows = client.query(store["collection"], filter="id >= 0", output_fields=["id"], limit=16_384,
                        consistency_level="Strong")
    return {int(r["id"]) for r in rows}


def _dense(s: Searcher) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 4)) for h in s.search(q, k=4, mode="dense")] for q in QUERIES]


def test_server_index_update_delete_filtered_and_hybrid_search(tmp_path: Path, notes: Path, milvus_server: str):
    idx = tmp_path / "idx"
    r = run_cli("index", str(notes), "--index", str(idx), "--milvus-uri", milvus_server, "--quiet")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((idx / "manifest.json").read_text())["vector_store"]
    assert manifest["kind"] == "milvus" and manifest["index_type"] == "HNSW" and "token" not in manifest
    assert saved_files(idx) == []                                    # no FAISS file: the vectors are in Milvus
    r = run_cli("search", "how do I rotate the logs", "--index", str(idx), "--json", "-k", "1")
    assert r.returncode == 0 and json.loads(r.stdout)["path"].endswith("logging.md"), r.stderr
    # the same folder in a FAISS index gives the same dense ranking and scores
    local = Searcher(tmp_path / "local")
    local.index(notes)
    s = Searcher(idx)
    assert _dense(s) == _dense(local)
    # incremental update: a changed file, a new one, a deleted one
    (notes / "cooking" / "bread.md").write_text("Rye bread needs a longer proof than wheat bread.\n")
    (notes / "ops" / "dns.md").write_text("Flush the DNS cache when a hostname resolves to an old address.\n")
    (notes / "garden" / "tomatoes.rst").unlink()
    report = s.index(notes)
    assert (report.count("updated"), report.count("added"), report.count("removed")) == (1, 1, 1)
    assert s.search("stale hostname lookups", k=1)[0].path.endswith("dns.md")
    assert all(not h.path.endswith("tomatoes.rst") for h in s.search("watering tomato plants", k=10))
    assert _milvus_ids(idx) == _sqlite_chunk_ids(idx)
    # delete by id, and metadata, path and type filters inside the dense leg of hybrid search
    s.add(["Volcano ash grounded flights.", "Volcano tourism grew."], ids=["n1", "n2"],
          metadata=[{"kind": "news"}, {"kind": "travel"}])
    assert [h.id for h in s.search("volcano", k=5, filters={"metadata": {"kind": "travel"}})] == ["n2"]
    assert {h.path for h in s.search("logs backups", k=10, filters={"path": "ops/*"})} == \
        {str(notes / "ops" / "logging.md"), str(notes / "ops" / "backup.txt"), str(notes / "ops" / "dns.md")}
    assert [h.path for h in s.search("notes", k=10, filters={"types": ("py",)})] == [str(notes / "code" / "retry.py")]
    assert s.delete(["n1"]) == 1 and [h.id for h in s.search("volcano ash", k=10, mode="dense")
                                      if h.id.startswith("n")] == ["n2"]
    assert _milvus_ids(idx) == _sqlite_chunk_ids(idx)
    # a keyword-only identifier still wins in hybrid mode over Milvus's dense leg
    assert s.search("logrotate", k=1)[0].path.endswith("logging.md")
    assert Searcher(idx).info()["ann"] == "HNSW"
    # the command line moves the vectors back to a FAISS file and drops the collection
    before = _dense(s)
    r = run_cli("migrate", "--to", "faiss", "--index", str(idx))
    assert r.returncode == 0 and r.stdout.startswith(f"moved {len(_sqlite_chunk_ids(idx))} vectors"), r.stderr
    assert len(saved_files(idx)) == 1 and _dense(Searcher(idx)) == before
    assert not pymilvus.MilvusClient(milvus_server).has_collection(manifest["collection"])


def test_killed_run_leaves_milvus_consistent_and_rerun_catches_up(tmp_path: Path, notes: Path, milvus_server: str):
    idx = tmp_path / "idx"
    assert run_cli("index", str(notes), "--index", str(idx), "--milvus-uri", milvus_server, "-q").returncode == 0
    _big_folder(notes / "field", 200)
    (notes / "cooking" / "bread.md").unlink()
    gen0 = _generation(idx)
    proc = _start_index(notes, idx)
    _wait_for_commit(proc, idx, gen0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # what was committed before the kill is searchable; Milvus reflects no uncommitted chunk
    assert Searcher(idx).search("how do I rotate the logs", k=1)[0].path.endswith("logging.md")
    assert _milvus_ids(idx) <= _sqlite_chunk_ids(idx)                 # Milvus is written after each commit
    r = run_cli("index", str(notes), "--index", str(idx), "--quiet")
    assert r.returncode == 0, r.stderr
    assert _milvus_ids(idx) == _sqlite_chunk_ids(idx)                # caught up from SQLite: adds and deletes
    s = Searcher(idx)
    assert s.info()["files"] == 204
    assert all(not h.path.endswith("bread.md") for h in s.search("sourdough bread", k=10, mode="dense"))
    assert s.search("field note about coral reefs", k=1, mode="dense")[0].path.startswith(str(notes / "field"))


def test_migrate_to_milvus_and_back_without_reembedding(tmp_path: Path, notes: Path):
    idx, db = tmp_path / "idx", tmp_path / "vectors.db"
    s = Searcher(idx)
    s.index(notes)
    before = _dense(s)
    with sqlite3.connect(idx / "searcher.db") as c:
        embeddings = c.execute("SELECT text_hash, vector FROM embeddings ORDER BY text_hash").fetchall()
    moved = s.migrate(milvus_config(str(db), collection="notes_vectors"))
    assert moved["vectors"] == len(_sqlite_chunk_ids(idx)) and saved_files(idx) == []
    assert _dense(s) == before and _dense(Searcher(idx)) == before
    assert _milvus_ids(idx) == _sqlite_chunk_ids(idx)
    s.add(["Quarterly revenue grew."], ids=["rev"])                   # the migrated index keeps indexing
    assert s.search("company earnings", k=1)[0].id == "rev"
    back = s.migrate(VectorStoreConfig())
    assert back["vectors"] == len(_sqlite_chunk_ids(idx)) and len(saved_files(idx)) == 1
    assert _dense(Searcher(idx)) == _dense(s)
    assert not pymilvus.MilvusClient(str(db)).has_collection("notes_vectors")   # the old store is gone
    with sqlite3.connect(idx / "searcher.db") as c:
        after = c.execute("SELECT text_hash, vector FROM embeddings ORDER BY text_hash").fetchall()
    assert set(embeddings) <= set(after) and len(after) == len(embeddings) + 1   # nothing re-embedded
    with pytest.raises(SearcherError, match="already keeps its vectors"):
        s.migrate(VectorStoreConfig())


def test_milvus_collection_rebuilt_when_it_cannot_catch_up(tmp_path: Path, notes: Path):
    idx, db = tmp_path / "idx", tmp_path / "vectors.db"
    config = milvus_config(str(db))
    s = Searcher(idx, vector_store=config)
    s.index(notes)
    client = pymilvus.MilvusClient(str(db))
    client.drop_collection(f"{config.collection}_state")              # Milvus lost track of its generation
    client.delete(config.collection, ids=[min(_sqlite_chunk_ids(idx))])
    with pytest.raises(SearcherError, match="rebuild it"):
        Searcher(idx).search("logs")                                   # a reader never writes to Milvus
    (notes / "extra.md").write_text("A note about lighthouses.\n")
    Searcher(idx).index(notes)                                         # the writer rebuilds from SQLite
    assert _milvus_ids(idx) == _sqlite_chunk_ids(idx)


def test_bad_milvus_options_are_clear_errors(tmp_path: Path, notes: Path):
    r = run_cli("index", str(notes), "--index", str(tmp_path / "a"), "--vector-store", "milvus")
    assert r.returncode == 1 and "needs --milvus-uri" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("index", str(notes), "--index", str(tmp_path / "a"), "--milvus-uri", str(tmp_path / "v.txt"))
    assert r.returncode == 1 and "must end in .db" in r.stderr
    r = run_cli("index", str(notes), "--index", str(tmp_path / "a"), "--milvus-uri", "http://127.0.0.1:9",
                "--milvus-index", "DISKANN")
    assert r.returncode == 1 and "--milvus-index DISKANN" in r.stderr
    r = run_cli("index", str(notes), "--index", str(tmp_path / "a"), "--milvus-uri", "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot connect to Milvus" in r.stderr and "Traceback" not in r.stderr
    Searcher(tmp_path / "f").index(notes)
    r = run_cli("index", str(notes), "--index", str(tmp_path / "f"), "--milvus-uri", str(tmp_path / "v.db"))
    assert r.returncode == 1 and "searcher migrate" in r.stderr
    # milvus-lite serves one process: a second process gets a one-line reason
    held = Searcher(tmp_path / "lite", vector_store=milvus_config(str(tmp_path / "held.db")))
    held.add(["one text"], ids=["x"])
    r = run_cli("search", "text", "--index", str(tmp_path / "lite"))
    assert r.returncode == 1 and "one process at a time" in r.stderr and "Traceback" not in r.stderr
