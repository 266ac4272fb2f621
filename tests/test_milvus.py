"""Milvus as the vector store: a real Milvus standalone server on 127.0.0.1 (PyPI ``milvus``, with
TLS and authentication on), and milvus-lite files; consistency with SQLite across a killed run;
migration both ways."""
from __future__ import annotations

import datetime
import json
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from searcher import Searcher, SearcherError
from searcher.store.faiss_index import saved_files
from searcher.store.protocol import VectorStoreConfig, milvus_config

from .conftest import run_cli
from .test_crash_and_locking import _big_folder, _generation, _start_index, _wait_for_commit

pymilvus = pytest.importorskip("pymilvus")
QUERIES = ["how do I rotate the logs", "baking sourdough", "watering tomato plants", "retry on network errors"]


TOKEN = "root:Milvus"          # the user Milvus creates when authentication is turned on
SERVER_NAME = "milvus.test"    # the name in the server's certificate (not the address dialled)


@dataclass(frozen=True)
class Server:
    uri: str
    ca: Path

    def options(self) -> list[str]:
        return ["--milvus-uri", self.uri, "--milvus-ca", str(self.ca), "--milvus-server-name", SERVER_NAME]

    def client(self):
        return pymilvus.MilvusClient(self.uri, token=TOKEN, server_pem_path=str(self.ca), server_name=SERVER_NAME)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.TraditionalOpenSSL,
                                                          serialization.NoEncryption()))
    return folder / "server.pem", folder / "server.key"


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory) -> Server:
    """A Milvus 2.3 standalone server (the binary shipped in the PyPI package ``milvus``) that
    speaks TLS with a self-signed certificate and requires a token."""
    server = pytest.importorskip("milvus").default_server
    base = tmp_path_factory.mktemp("milvus-server")
    pem, key = _self_signed(base)
    server.set_base_dir(str(base / "data"))
    for option, value in (("authorization_enabled", True), ("tls_mode", 1), ("server_pem_path", str(pem)),
                          ("server_key_path", str(key))):
        server.config.set(option, value)
    server.start()
    try:
        yield Server(f"https://127.0.0.1:{server.listen_port}", pem)
    finally:
        server.stop()


@pytest.fixture
def milvus(milvus_server: Server, monkeypatch) -> Server:
    """The server, with its token where searcher (and the CLI it starts) reads it."""
    monkeypatch.setenv("SEARCHER_MILVUS_TOKEN", TOKEN)
    return milvus_server


def _sqlite_chunk_ids(idx: Path) -> set[int]:
    with sqlite3.connect(idx / "searcher.db") as c:
        return {r[0] for r in c.execute("SELECT id FROM chunks")}


def _milvus_ids(idx: Path, server: Server | None = None) -> set[int]:
    """The chunk ids the index's Milvus collection holds, read with a client of our own."""
    store = json.loads((idx / "manifest.json").read_text())["vector_store"]
    client = server.client() if server else pymilvus.MilvusClient(store["uri"])
    client.load_collection(store["collection"])
    rows = client.query(store["collection"], filter="id >= 0", output_fields=["id"], limit=16_384,
                        consistency_level="Strong")
    return {int(r["id"]) for r in rows}


def _dense(s: Searcher) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 4)) for h in s.search(q, k=4, mode="dense")] for q in QUERIES]


def test_server_index_update_delete_filtered_and_hybrid_search(tmp_path: Path, notes: Path, milvus: Server):
    idx = tmp_path / "idx"
    r = run_cli("index", str(notes), "--index", str(idx), *milvus.options(), "--quiet")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((idx / "manifest.json").read_text())["vector_store"]
    assert manifest["kind"] == "milvus" and manifest["index_type"] == "HNSW" and manifest["server_name"] == SERVER_NAME
    assert TOKEN not in (idx / "manifest.json").read_text()          # the token is never written down
    assert saved_files(idx) == []                                    # no FAISS file: the vectors are in Milvus
    r = run_cli("search", "how do I rotate the logs", "--index", str(idx), "--json", "-k", "1")
    assert r.returncode == 0 and json.loads(r.stdout)["path"].endswith("logging.md"), r.stderr
    r = run_cli("search", "how do I rotate the logs", "--index", str(idx), env={"SEARCHER_MILVUS_TOKEN": ""})
    assert r.returncode == 1 and "cannot connect to Milvus" in r.stderr and "token" in r.stderr
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
    assert _milvus_ids(idx, milvus) == _sqlite_chunk_ids(idx)
    # delete by id, and metadata, path and type filters inside the dense leg of hybrid search
    s.add(["Volcano ash grounded flights.", "Volcano tourism grew."], ids=["n1", "n2"],
          metadata=[{"kind": "news"}, {"kind": "travel"}])
    assert [h.id for h in s.search("volcano", k=5, filters={"metadata": {"kind": "travel"}})] == ["n2"]
    assert {h.path for h in s.search("logs backups", k=10, filters={"path": "ops/*"})} == \
        {str(notes / "ops" / "logging.md"), str(notes / "ops" / "backup.txt"), str(notes / "ops" / "dns.md")}
    assert [h.path for h in s.search("notes", k=10, filters={"types": ("py",)})] == [str(notes / "code" / "retry.py")]
    assert s.delete(["n1"]) == 1 and [h.id for h in s.search("volcano ash", k=10, mode="dense")
                                      if h.id.startswith("n")] == ["n2"]
    assert _milvus_ids(idx, milvus) == _sqlite_chunk_ids(idx)
    # a keyword-only identifier still wins in hybrid mode over Milvus's dense leg
    assert s.search("logrotate", k=1)[0].path.endswith("logging.md")
    assert Searcher(idx).info()["ann"] == "HNSW"
    # the command line moves the vectors back to a FAISS file and drops the collection
    before = _dense(s)
    r = run_cli("migrate", "--to", "faiss", "--index", str(idx))
    assert r.returncode == 0 and r.stdout.startswith(f"moved {len(_sqlite_chunk_ids(idx))} vectors"), r.stderr
    assert len(saved_files(idx)) == 1 and _dense(Searcher(idx)) == before
    assert not milvus.client().has_collection(manifest["collection"])


def test_killed_run_leaves_milvus_consistent_and_rerun_catches_up(tmp_path: Path, notes: Path, milvus: Server):
    idx = tmp_path / "idx"
    assert run_cli("index", str(notes), "--index", str(idx), *milvus.options(), "-q").returncode == 0
    _big_folder(notes / "field", 330)
    (notes / "cooking" / "bread.md").unlink()
    gen0 = _generation(idx)
    proc = _start_index(notes, idx)
    _wait_for_commit(proc, idx, gen0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # what was committed before the kill is searchable; Milvus reflects no uncommitted chunk
    assert Searcher(idx).search("how do I rotate the logs", k=1)[0].path.endswith("logging.md")
    assert _milvus_ids(idx, milvus) <= _sqlite_chunk_ids(idx)         # Milvus is written after each commit
    r = run_cli("index", str(notes), "--index", str(idx), "--quiet")
    assert r.returncode == 0, r.stderr
    assert _milvus_ids(idx, milvus) == _sqlite_chunk_ids(idx)        # caught up from SQLite: adds and deletes
    s = Searcher(idx)
    assert s.info()["files"] == 334
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
