"""The static model (``--model static``): distilled from the packaged model into the user cache,
then the whole pipeline on it — chunking, incremental runs, every search mode, filters, both vector
stores, the CLI and HTTP — with queries that import neither torch nor onnxruntime.

The table is distilled once per session with a small vocabulary (seconds; the full one takes
minutes) into the exact cache folder ``--model static`` looks in."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from searcher import Searcher
from searcher.embed import static
from searcher.errors import SearcherError

from .conftest import run_cli, store_config, write_tree
from .test_query_encoder import HEAVY, _blocked_env

# the words of the notes fixture and of the queries below; every other word is spelled in characters
KEEP = ("logs", "log", "rotated", "rotation", "nightly", "rotate", "days", "keep", "backup", "backups", "database",
        "run", "sunday", "copies", "bread", "flour", "water", "dough", "bake", "baking", "oven", "tomato",
        "tomatoes", "plants", "water", "garden", "stems", "network", "error", "retry", "how", "do", "i", "the",
        "when", "what", "to", "and", "of", "a", "is", "at", "it", "by")


@pytest.fixture(scope="session")
def static_cache(tmp_path_factory) -> dict:
    """A user cache (``$SEARCHER_CACHE``) holding the ``static`` table, distilled here."""
    cache = tmp_path_factory.mktemp("cache")
    before = os.environ.get(static.CACHE_ENV)
    os.environ[static.CACHE_ENV] = str(cache)
    source = static.default_source()
    record = static.distill(source, static.cache_folder(source), keep=KEEP)
    yield {"record": record, "folder": static.cache_folder(source)}
    if before is None:
        os.environ.pop(static.CACHE_ENV, None)
    else:
        os.environ[static.CACHE_ENV] = before


@pytest.fixture
def notes_tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "notes", {
        "ops/logging.md": "# Logging\n\nLogs are rotated nightly. To keep more days of logs, rotate less often.\n",
        "ops/backup.txt": "Backups of the database run every Sunday and keep eight copies.\n",
        "cooking/bread.md": "# Bread\n\nMix flour and water, let the dough rise, then bake it in the oven.\n",
        "garden/tomatoes.rst": "Tomatoes\n========\n\nWater the tomato plants and tie the stems.\n",
    })


def test_distillation_records_its_source_settings_and_the_fingerprint_of_its_files(static_cache):
    record, folder = static_cache["record"], static_cache["folder"]
    assert record["settings"]["keep"] == sorted(KEEP) and record["source"] == str(static.default_source())
    assert json.loads((folder / static.RECORD).read_text()) == record
    enc = static.load_static()
    assert enc.info.name == "static" and enc.info.fingerprint == record["fingerprint"]
    assert enc.dim == record["dim"] and 100 < record["tokens"] < 400      # specials, characters, KEEP
    vecs = enc.encode(["bake bread in the oven", "flour and water dough", "rotate the logs nightly"])
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    text = "Logs rotated nightly by logrotate"
    spans = enc.token_spans([text])[0]
    assert [text[a:b] for a, b in spans[:3]] == ["Logs", "rotated", "nightly"] and spans[-1][1] == len(text)
    assert enc.unknown_fraction("数据库备份") == 1.0 and enc.unknown_fraction("bake bread") == 0.0


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_index_search_filters_and_incremental_run(static_cache, notes_tree: Path, tmp_path: Path, store: str):
    s = Searcher(tmp_path / "idx", model="static", vector_store=store_config(store, tmp_path))
    report = s.index(notes_tree)
    assert report.count("added") == 4
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"]["name"] == "static"
    assert manifest["model"]["fingerprint"] == static_cache["record"]["fingerprint"]
    assert manifest["query_encoder"] == {"kind": "static"} and manifest["chunking"]["max_tokens"] == 256
    for mode in ("hybrid", "dense", "keyword"):
        assert s.search("baking bread in the oven", k=1, mode=mode)[0].path.endswith("bread.md"), mode
    hits = s.search("water", k=5, filters={"path": "garden/*"})
    assert hits and all("/garden/" in h.path for h in hits)
    assert s.info()["query_encoder"]["active"] == "static"
    s.close()

    (notes_tree / "cooking" / "bread.md").write_text("# Bread\n\nBake the dough at 230 degrees.\n")
    (notes_tree / "ops" / "backup.txt").unlink()
    again = Searcher(tmp_path / "idx")          # no --model: the index's own table, found by fingerprint
    report = again.index(notes_tree)
    assert [report.count(k) for k in ("added", "updated", "unchanged", "removed")] == [0, 1, 2, 1]
    assert again.search("backups of the database", k=3, mode="dense")[0].path.endswith(".md")
    again.close()


def test_searching_a_static_index_with_the_default_model_is_an_error(static_cache, notes_tree: Path, tmp_path: Path):
    Searcher(tmp_path / "idx", model="static").index(notes_tree)
    with pytest.raises(SearcherError, match="built with model 'static'.*'all-MiniLM-L6-v2' is a different model"):
        Searcher(tmp_path / "idx", model="all-MiniLM-L6-v2").search("bread")


def test_a_cached_table_is_found_by_its_fingerprint_wherever_it_lies(static_cache, notes_tree: Path,
                                                                     tmp_path: Path):
    """A search finds the index's table by the fingerprint in the manifest, without hashing the source
    model, so a renamed cache folder (e.g. by a newer key scheme) still serves old indexes."""
    Searcher(tmp_path / "idx", model="static").index(notes_tree)
    static.load_static.cache_clear()
    folder = static_cache["folder"]
    moved = folder.with_name("moved")
    folder.rename(moved)
    try:
        assert Searcher(tmp_path / "idx").search("bread", k=1, mode="dense")[0].path.endswith("bread.md")
        assert static.load_static("static", 32, static_cache["record"]["fingerprint"]).folder == moved
    finally:
        moved.rename(folder)
        static.load_static.cache_clear()


def test_a_model2vec_folder_by_path(static_cache, notes_tree: Path, tmp_path: Path):
    Searcher(tmp_path / "idx", model=str(static_cache["folder"])).index(notes_tree)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"]["name"] == str(static_cache["folder"].resolve())
    assert manifest["model"]["fingerprint"] == static_cache["record"]["fingerprint"]
    assert Searcher(tmp_path / "idx").search("tomato plants", k=1)[0].path.endswith("tomatoes.rst")


def test_a_static_folder_whose_table_changed_is_refused(static_cache, notes_tree: Path, tmp_path: Path):
    """Vectors of another table are garbage: a folder given by path is checked against the index's
    recorded fingerprint when the index is opened without --model."""
    import shutil

    from safetensors.numpy import load_file, save_file

    folder = shutil.copytree(static_cache["folder"], tmp_path / "m2v")
    Searcher(tmp_path / "idx", model=str(folder)).index(notes_tree)
    table = load_file(str(folder / "model.safetensors"))
    save_file({"embeddings": table["embeddings"][:, ::-1].copy()}, str(folder / "model.safetensors"))
    with pytest.raises(SearcherError, match="has other weights .* than the index was built with"):
        Searcher(tmp_path / "idx").search("bread")


def test_bad_static_models_are_one_line_errors(static_cache, tmp_path: Path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "modules.json"):
        (broken / name).write_bytes((static_cache["folder"] / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a table")
    with pytest.raises(SearcherError, match=r"cannot load static model '.*broken'.*Model2Vec folder") as exc:
        Searcher(tmp_path / "idx", model=str(broken)).add(["some text"])
    assert "\n" not in str(exc.value)
    with pytest.raises(SearcherError, match="static model computes in float32 only"):
        Searcher(tmp_path / "idx2", model="static", precision="int8").add(["some text"])


def test_cold_cli_search_needs_neither_torch_nor_onnxruntime(static_cache, notes_tree: Path, tmp_path: Path):
    r = run_cli("index", str(notes_tree), "--index", str(tmp_path / "idx"), "--model", "static", "--json")
    assert r.returncode == 0, r.stderr
    r = run_cli("search", "how do I rotate the logs", "--index", str(tmp_path / "idx"), "--json",
                env=_blocked_env(tmp_path, HEAVY + ",onnxruntime"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["path"].endswith("logging.md")
    r = run_cli("info", "--index", str(tmp_path / "idx"), env=_blocked_env(tmp_path, HEAVY + ",onnxruntime"))
    assert r.returncode == 0 and "static table lookup" in r.stdout, r.stderr


def test_http_server_adds_and_searches_a_static_index(static_cache, notes_tree: Path, tmp_path: Path):
    pytest.importorskip("fastapi")
    from searcher.client import Client

    from .test_server import start_server, stop_server

    Searcher(tmp_path / "idx", model="static").index(notes_tree)
    proc, url = start_server("--index", str(tmp_path / "idx"), log=tmp_path / "server.log")
    try:
        client = Client(url)
        client.add(["Tomato plants need water every day"], ids=["tip"])
        hits = client.search("water the tomato plants", k=2, mode="dense")
        assert {h.id for h in hits} >= {"tip"} and client.info()["model"]["name"] == "static"
    finally:
        stop_server(proc)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_ray_workers_embed_with_the_same_table(static_cache, notes_tree: Path, tmp_path: Path):
    """Workers find the table in the same cache by the driver's fingerprint; their vectors are the
    local ones."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    try:
        s = Searcher(tmp_path / "idx", model="static", ray_address="local")
        assert s.index(notes_tree).embedded >= 4
        local = Searcher(tmp_path / "local", model="static")
        local.index(notes_tree)
        for query in ("bake bread", "rotate the logs"):
            assert ([(h.id, round(h.score, 5)) for h in s.search(query, k=4, mode="dense")]
                    == [(h.id, round(h.score, 5)) for h in local.search(query, k=4, mode="dense")])
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
