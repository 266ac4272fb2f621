"""The light query encoder: ONNX vectors equal torch's, and searches run with torch unimportable."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from searcher import Searcher
from searcher.embed.base import CHECK_TEXTS, MIN_COSINE
from searcher.embed.encoder import DEFAULT_MODEL, Encoder, resolve_model
from searcher.embed.onnx import ONNX_FILE, OnnxQueryEncoder, export

from .conftest import NOTES, run_cli

TEXTS = [*NOTES.values(), *CHECK_TEXTS, "Rotate   the\tlogs\n\nnightly", "日志 rotation 每天"]

# A sitecustomize that makes the named top-level packages unimportable in a child process.
BLOCKER = '''
import os, sys
BLOCKED = set(os.environ["BLOCK_IMPORTS"].split(","))
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, _Blocker())
'''
HEAVY = "torch,transformers,sentence_transformers"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _check_against_torch(encoder: Encoder, folder: Path) -> OnnxQueryEncoder:
    info = export(encoder, folder, list(NOTES.values()))
    assert info.kind == "onnx", info.reason
    assert info.min_cosine >= MIN_COSINE and info.texts_checked == len(CHECK_TEXTS) + len(NOTES)
    light = OnnxQueryEncoder.open(folder, info, encoder.dim)
    assert _cosines(light.encode(TEXTS), encoder.encode_with_torch(TEXTS)).min() >= MIN_COSINE
    assert [light.unknown_fraction(t) for t in TEXTS] == [encoder.unknown_fraction(t) for t in TEXTS]
    return light


def _bulk_check(encoder: Encoder) -> None:
    """More than one batch goes through ONNX Runtime, row by row equal to torch's vectors."""
    texts = [f"{t} ({i})" for i, t in enumerate(TEXTS * 3)]
    assert len(texts) > encoder.batch_size
    vectors = encoder.encode(texts)
    assert encoder.onnx_unusable == ""
    assert _cosines(vectors, encoder.encode_with_torch(texts)).min() >= MIN_COSINE


def test_bulk_encoding_runs_on_onnx_runtime_with_torch_vectors(encoder):
    _bulk_check(encoder)


def test_onnx_vectors_equal_torch_for_the_packaged_model(encoder, tmp_path: Path):
    light = _check_against_torch(encoder, tmp_path)
    # what query.dense_weight reads: the English model is blind to Chinese
    assert light.unknown_fraction("数据库备份什么时候运行") > 0.5
    assert light.unknown_fraction("backups") == 0.0


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_onnx_vectors_equal_torch_for_the_tiny_model_with_each_pooling(tiny_model: Path, tmp_path: Path,
                                                                          pooling: str):
    from sentence_transformers import SentenceTransformer, models

    st = SentenceTransformer(str(tiny_model), device="cpu")
    modules = [st[0], models.Pooling(st[0].get_embedding_dimension(), pooling_mode=pooling)]
    if pooling != "mean":
        modules.append(models.Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(tmp_path / "model"))
    encoder = Encoder(str(tmp_path / "model"), batch_size=4)
    assert encoder.max_seq_length == 64 and len(encoder.token_spans([CHECK_TEXTS[-1]])[0]) > 64  # truncates
    _check_against_torch(encoder, tmp_path)
    _bulk_check(encoder)


def test_a_model_that_cannot_be_exported_is_searched_with_torch_and_info_says_why(tiny_model: Path, tmp_path: Path,
                                                                                   notes: Path):
    from sentence_transformers import SentenceTransformer, models

    st = SentenceTransformer(str(tiny_model), device="cpu")
    SentenceTransformer(modules=[st[0], models.CNN(32, 8, [1, 3]), models.Pooling(16)], device="cpu").save(
        str(tmp_path / "cnn"))
    encoder = Encoder(str(tmp_path / "cnn"), batch_size=2)
    texts = list(NOTES.values())
    assert np.array_equal(encoder.encode(texts), encoder.encode_with_torch(texts))   # bulk, through torch
    assert "module CNN is not exportable" in encoder.onnx_unusable
    s = Searcher(tmp_path / "idx", model=str(tmp_path / "cnn"))
    s.index(notes)
    info = s.info()["query_encoder"]
    assert info["kind"] == "torch" and info["active"] == "torch" and "module CNN is not exportable" in info["why_torch"]
    assert not (tmp_path / "idx" / ONNX_FILE).exists()
    assert Searcher(tmp_path / "idx").search("rotate the logs", k=1)
    r = run_cli("info", "--index", str(tmp_path / "idx"))
    assert "torch, because the model could not be exported to ONNX: module CNN" in r.stdout


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Path:
    from .conftest import write_tree

    base = tmp_path_factory.mktemp("qe")
    notes = write_tree(base / "notes", NOTES)
    Searcher(base / "idx").index(notes)
    return base / "idx"


def _blocked_env(tmp_path: Path, blocked: str) -> dict[str, str]:
    (tmp_path / "blocker").mkdir(exist_ok=True)
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join(p for p in (str(tmp_path / "blocker"), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "BLOCK_IMPORTS": blocked}


def test_blocker_works(tmp_path: Path, indexed: Path):
    """The child really cannot import torch: searching with the torch model fails there."""
    r = run_cli("search", "rotate the logs", "--index", str(indexed), "--model", resolve_model(DEFAULT_MODEL),
                env=_blocked_env(tmp_path, HEAVY))
    assert r.returncode == 1 and "is blocked in this test" in r.stderr


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
@pytest.mark.parametrize("query", ["how do I rotate the logs", "when do backups run", "bake bread at what heat"])
def test_cli_search_without_torch_returns_the_torch_hits(tmp_path: Path, indexed: Path, mode: str, query: str):
    # the same weights under another name: searched through torch in this process
    with Searcher(indexed, model=resolve_model(DEFAULT_MODEL)) as s:
        expected = s.search(query, k=5, mode=mode)
    r = run_cli("search", query, "--index", str(indexed), "--mode", mode, "-k", "5", "--json",
                env=_blocked_env(tmp_path, HEAVY))
    assert r.returncode == 0, r.stderr
    hits = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(h["id"], h["chunk"]) for h in hits] == [(h.id, h.chunk) for h in expected]
    assert np.allclose([h["score"] for h in hits], [h.score for h in expected], atol=1e-4)


def test_keyword_search_loads_no_model_and_no_vectors(tmp_path: Path, indexed: Path):
    r = run_cli("search", "logrotate rotate count", "--index", str(indexed), "--mode", "keyword", "--json",
                env=_blocked_env(tmp_path, HEAVY + ",onnxruntime,tokenizers,faiss"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["path"].endswith("logging.md")


def test_warm_loads_the_query_encoder_and_vectors_without_torch(tmp_path: Path, indexed: Path):
    """What `searcher serve` calls at start: with torch unimportable it still succeeds, and the
    search after it answers."""
    code = ("import sys; from searcher import Searcher; s = Searcher(sys.argv[1]); s.warm(); "
            "print(s.search('how do I rotate the logs', k=1, mode='dense')[0].path)")
    r = subprocess.run([sys.executable, "-c", code, str(indexed)], capture_output=True, text=True,
                       env={**os.environ, **_blocked_env(tmp_path, HEAVY)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("logging.md")


def test_index_without_an_export_falls_back_to_torch_and_the_next_run_exports(tmp_path: Path, notes: Path,
                                                                              monkeypatch):
    """An index whose shared export is gone from the user cache, or made before exports existed (no
    record in the manifest), is searched with torch, says why, and gains the export on its next run."""
    monkeypatch.setenv("SEARCHER_CACHE", str(tmp_path / "cache"))    # its own: this test deletes it
    s = Searcher(tmp_path / "idx")
    s.index(notes)
    expected = [(h.id, h.chunk) for h in s.search("how do I rotate the logs", k=3, mode="dense")]
    assert not (tmp_path / "idx" / ONNX_FILE).exists()
    shutil.rmtree(tmp_path / "cache" / "onnx")
    gone = Searcher(tmp_path / "idx")
    assert "missing from the user cache" in gone.info()["query_encoder"]["why_torch"]
    assert [(h.id, h.chunk) for h in gone.search("how do I rotate the logs", k=3, mode="dense")] == expected

    manifest = tmp_path / "idx" / "manifest.json"
    data = json.loads(manifest.read_text())
    assert data.pop("query_encoder")["kind"] == "onnx"
    manifest.write_text(json.dumps(data))

    old = Searcher(tmp_path / "idx")
    qe = old.info()["query_encoder"]
    assert qe["active"] == "torch" and "kind" not in qe and "no ONNX export yet" in qe["why_torch"]
    assert [(h.id, h.chunk) for h in old.search("how do I rotate the logs", k=3, mode="dense")] == expected
    r = run_cli("search", "how do I rotate the logs", "--index", str(tmp_path / "idx"),
                env=_blocked_env(tmp_path, HEAVY))
    assert r.returncode == 1 and "blocked" in r.stderr     # no export yet: this search needs torch

    old.index(notes)
    info = Searcher(tmp_path / "idx").info()["query_encoder"]
    assert info["active"] == "onnx" and info["min_cosine"] >= MIN_COSINE
    assert info["file"].startswith(str(tmp_path / "cache"))
    assert json.loads(manifest.read_text())["created"] == data["created"]
    r = run_cli("search", "how do I rotate the logs", "--index", str(tmp_path / "idx"), "-k", "3", "--mode", "dense",
                "--json", env=_blocked_env(tmp_path, HEAVY))
    assert [(json.loads(x)["id"], json.loads(x)["chunk"]) for x in r.stdout.splitlines()] == expected


def test_the_export_cuts_and_embeds_as_the_model_does(encoder, tmp_path: Path):
    """What an index run needs of the export: torch's token spans (so chunks are cut at the same
    places) and torch's vectors for texts of mixed lengths embedded in padded batches."""
    light = _check_against_torch(encoder, tmp_path)
    texts = [f"{t} ({i})" for i, t in enumerate(TEXTS * 3)]
    assert light.token_spans(texts) == encoder.token_spans(texts)
    assert _cosines(light.encode(texts), encoder.encode_with_torch(texts)).min() >= MIN_COSINE


def test_an_incremental_run_never_imports_torch_and_finds_the_edit(tmp_path: Path, notes: Path):
    """After the first run (which exports the model), changing one file, adding one and deleting
    one are indexed with torch unimportable; the result equals an index built from scratch."""
    Searcher(tmp_path / "idx").index(notes)
    (notes / "ops" / "logging.md").write_text("# Logging\n\nLogs now go to the zeppelin hangar archive every hour.\n")
    (notes / "new.txt").write_text("The espresso machine descales itself on Sundays.\n")
    (notes / "ops" / "backup.txt").unlink()
    r = run_cli("index", str(notes), "--index", str(tmp_path / "idx"), "--json", env=_blocked_env(tmp_path, HEAVY))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])["summary"]
    assert (summary["added"], summary["updated"], summary["removed"]) == (1, 1, 1)
    r = run_cli("search", "where are logs archived", "--index", str(tmp_path / "idx"), "-k", "1", "--json",
                env=_blocked_env(tmp_path, HEAVY))
    assert json.loads(r.stdout.splitlines()[0])["text"].endswith("zeppelin hangar archive every hour.")
    fresh = Searcher(tmp_path / "fresh")
    fresh.index(notes)
    incremental = Searcher(tmp_path / "idx")
    for query in ("descaling the coffee machine", "where are logs archived", "bake bread"):
        assert ([(h.id, h.chunk) for h in incremental.search(query, k=3)]
                == [(h.id, h.chunk) for h in fresh.search(query, k=3)])
