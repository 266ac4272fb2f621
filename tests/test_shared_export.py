"""One checked ONNX export per model and machine, in the user cache, shared by every index of the
model: a second index of the model never imports torch and holds no copy; a damaged or deleted
cache entry is made again by the next index run (or named in a one-line error); an index made
before the cache, with its own encoder.onnx, still searches."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from searcher import Searcher
from searcher.embed.onnx import ONNX_FILE, RECORD, TOKENIZER_FILE, find_export
from searcher.errors import SearcherError

from .conftest import NOTES, write_tree
from .test_query_encoder import HEAVY, _blocked_env

# a child that indexes a folder into a new index and says whether torch was imported
INDEX_AND_REPORT = ("import json, sys; from searcher import Searcher; s = Searcher(sys.argv[2]); s.index(sys.argv[1]); "
                    "print(json.dumps({'torch': 'torch' in sys.modules, 'hit': s.search('rotate the logs', k=1)[0].path}))")


def _child(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_second_index_of_the_model_shares_the_export_and_never_imports_torch(tmp_path: Path, notes: Path):
    Searcher(tmp_path / "first").index(notes)       # makes the export, unless an earlier test did
    shared = json.loads((tmp_path / "first" / "manifest.json").read_text())["query_encoder"]
    r = _child(INDEX_AND_REPORT, str(notes), str(tmp_path / "second"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"torch": False, "hit": str(notes / "ops" / "logging.md")}
    second = tmp_path / "second"
    assert not (second / ONNX_FILE).exists() and not (second / TOKENIZER_FILE).exists()
    assert json.loads((second / "manifest.json").read_text())["query_encoder"] == shared
    assert sum(p.stat().st_size for p in second.iterdir()) < 2**20          # the export alone was 90 MB
    # the same with torch unimportable: nothing in an index run of a known model needs it
    r = _child(INDEX_AND_REPORT, str(notes), str(tmp_path / "third"), env=_blocked_env(tmp_path, HEAVY))
    assert r.returncode == 0, r.stderr


def test_a_deleted_or_damaged_cache_entry_is_made_again_or_named_in_one_line(tmp_path: Path, notes: Path,
                                                                             monkeypatch):
    monkeypatch.setenv("SEARCHER_CACHE", str(tmp_path / "cache"))    # its own: this test damages it
    idx = tmp_path / "idx"
    Searcher(idx).index(notes)
    recorded = json.loads((idx / "manifest.json").read_text())["query_encoder"]
    config = json.loads((idx / "manifest.json").read_text())["model"]
    folder = find_export(config["fingerprint"], "float32").folder

    shutil.rmtree(folder)                                       # deleted: searches use torch, a run makes it
    assert "missing from the user cache" in Searcher(idx).info()["query_encoder"]["why_torch"]
    assert Searcher(idx).search("rotate the logs", k=1)[0].path.endswith("logging.md")
    Searcher(idx).index(notes)
    again = json.loads((folder / RECORD).read_text())["query_encoder"]
    assert again["sha256"] == recorded["sha256"]                # the same exporter makes the same bytes
    assert json.loads((idx / "manifest.json").read_text())["query_encoder"]["sha256"] == recorded["sha256"]

    onnx = folder / ONNX_FILE                                    # garbage of the same size: one line
    onnx.write_bytes(b"\0" * onnx.stat().st_size)
    with pytest.raises(SearcherError, match=r"encoder.onnx or encoder.tokenizer.json: cannot load them .*; "
                                            r"delete .*: searches then use torch") as err:
        Searcher(idx).search("rotate the logs", k=1)
    assert "\n" not in str(err.value) and str(folder) in str(err.value)
    (notes / "new.md").write_text("A new note about pruning apple trees in late winter.\n")
    Searcher(idx).index(notes)                                  # the run sees the bytes differ: made again
    assert find_export(config["fingerprint"], "float32").intact()
    assert Searcher(idx).search("when to prune apple trees", k=1)[0].path.endswith("new.md")

    (folder / TOKENIZER_FILE).write_text("{not json")           # a garbage tokenizer: also made again
    with pytest.raises(SearcherError, match="cannot load them"):
        Searcher(idx).search("rotate the logs", k=1)
    (notes / "newer.md").write_text("Plums ripen in August.\n")
    Searcher(idx).index(notes)                                  # a run that embeds finds it, as for the graph
    assert find_export(config["fingerprint"], "float32").intact()
    assert Searcher(idx).search("when to prune apple trees", k=1)[0].path.endswith("new.md")

    os.truncate(onnx, onnx.stat().st_size // 2)                  # truncated: seen without hashing, as if deleted
    assert find_export(config["fingerprint"], "float32") is None


def test_an_index_with_its_own_export_from_before_the_cache_still_searches(tmp_path: Path, notes: Path):
    """The old format: encoder.onnx and encoder.tokenizer.json in the index folder, the manifest
    naming them. Searched from them, with torch unimportable and an empty user cache."""
    idx = tmp_path / "idx"
    Searcher(idx).index(notes)
    manifest = json.loads((idx / "manifest.json").read_text())
    shared = find_export(manifest["model"]["fingerprint"], "float32").folder
    for name in (ONNX_FILE, TOKENIZER_FILE):
        shutil.copy(shared / name, idx / name)
    qe = manifest["query_encoder"]
    manifest["query_encoder"] = {"kind": "onnx", "file": ONNX_FILE, "tokenizer": TOKENIZER_FILE,
                                 **{k: qe[k] for k in ("unk_token_id", "min_cosine", "texts_checked", "exporter")}}
    (idx / "manifest.json").write_text(json.dumps(manifest))
    env = {**_blocked_env(tmp_path, HEAVY), "SEARCHER_CACHE": str(tmp_path / "empty")}
    code = ("import sys; from searcher import Searcher; s = Searcher(sys.argv[1]); "
            "print(s.info()['query_encoder']['active'], s.search('rotate the logs', k=1, mode='dense')[0].path)")
    r = _child(code, str(idx), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["onnx", str(notes / "ops" / "logging.md")]
    # its next index run keeps it as it is: nothing to make
    write_tree(notes, {"more.md": NOTES["ops/backup.txt"].replace("Sunday", "Monday")})
    r = _child(INDEX_AND_REPORT.replace("s.index(sys.argv[1]); ", "s.index(sys.argv[1]); s = Searcher(sys.argv[2]); "),
               str(notes), str(idx), env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["torch"] is False and (idx / ONNX_FILE).is_file()
