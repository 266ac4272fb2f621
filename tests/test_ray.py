"""Embedding on Ray (local mode, 2 CPUs): a slice of a real collection indexed through Ray gives the
vectors local encoding gives, each worker loads the model once per indexing run, a Ray worker killed
mid-run does not stop the run, and a killed driver loses only the batch in flight."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from searcher import Searcher

from .conftest import real_documents as _documents
from .conftest import run_cli
from .test_crash_and_locking import _big_folder, _wait_for_commit

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_index_through_ray_gives_the_vectors_of_local_encoding(tmp_path: Path, local_ray, encoder):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in _documents(40).items():
        (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    s = Searcher(tmp_path / "idx", ray_address="local")
    report = s.index(folder)
    assert report.count("added") == 40 and report.embedded >= 20
    with sqlite3.connect(tmp_path / "idx" / "searcher.db") as c:
        rows = c.execute("SELECT DISTINCT c.text, e.vector FROM chunks c JOIN embeddings e "
                         "ON e.text_hash = c.text_hash").fetchall()
    texts = [t for t, _ in rows]
    via_ray = np.vstack([np.frombuffer(v, dtype=np.float32) for _, v in rows])
    assert len(texts) == report.embedded
    assert _cosines(via_ray, encoder.encode(texts)).min() >= 0.99999
    top = s.search("how are the results measured", k=3, mode="dense")
    assert len(top) == 3 and all(h.path.startswith(str(folder)) for h in top)


def _map_workers() -> list[int]:
    """Pids of the Ray actors holding our model (Ray titles an actor's process ``ray::<class>...``,
    a Ray Data actor's ``ray::MapWorker(MapBatches(<class>))...``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::") and b"_EmbedWorker" in cmdline:
                pids.append(int(entry.name))
    return pids


def test_each_worker_loads_the_model_once_per_indexing_run(tmp_path: Path, local_ray):
    # 600 distinct one-chunk texts: the run embeds them in three steps of at most 256 chunks
    texts = [f"{i}. {text[:400]}" for i, text in enumerate(_documents(600).values())]
    ending = set(_map_workers())                    # actors of an earlier test, still shutting down
    started: set[int] = set()
    indexed = threading.Event()

    def watch() -> None:
        while not indexed.is_set():
            started.update(set(_map_workers()) - ending)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        s = Searcher(tmp_path / "idx", ray_address="local")
        s.add(texts)
    finally:
        indexed.set()
        watcher.join()
    assert s.info()["chunks"] == len(texts) > 2 * 256
    assert len(started) == int(ray.cluster_resources()["CPU"])   # one model-holding process per worker
    deadline = time.monotonic() + 60
    while set(_map_workers()) & started:            # released when the run ended
        assert time.monotonic() < deadline, "the run's Ray workers outlived it"
        time.sleep(0.2)


def test_a_killed_worker_mid_run_still_completes(local_ray, encoder):
    from searcher.embed.ray_encoder import RayEncoder

    texts = [text[:400] for text in _documents(600).values()]
    ray_encoder = RayEncoder(encoder, "local")
    result: dict[str, np.ndarray] = {}
    ending = set(_map_workers())                    # actors of an earlier run, still shutting down
    run = threading.Thread(target=lambda: result.update(vectors=ray_encoder.encode(texts)))
    run.start()
    deadline = time.monotonic() + 240
    while not (workers := sorted(set(_map_workers()) - ending)):
        assert run.is_alive() and time.monotonic() < deadline, "no Ray worker appeared"
        time.sleep(0.2)
    time.sleep(3)                                   # let it load the model and take a batch
    assert run.is_alive(), "the run ended before a worker could be killed; give it more texts"
    os.kill(workers[0], signal.SIGKILL)
    run.join(timeout=600)
    assert not run.is_alive() and "vectors" in result
    assert workers[0] not in _map_workers()
    assert result["vectors"].shape == (len(texts), encoder.dim)
    assert _cosines(result["vectors"], encoder.encode(texts)).min() >= 0.99999   # row by row, in order
    ray_encoder.close()


def test_a_worker_whose_model_has_other_weights_is_a_clear_error(tmp_path: Path, local_ray, tiny_model: Path):
    import torch
    from sentence_transformers import SentenceTransformer

    from searcher import SearcherError
    from searcher.embed.encoder import load_encoder
    from searcher.embed.ray_encoder import RayEncoder

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    local = load_encoder(str(model))
    assert local.info.fingerprint                   # the driver's weights, taken before the change
    changed = SentenceTransformer(str(model), device="cpu")
    with torch.no_grad():
        for weights in changed.parameters():
            weights.add_(0.01)
    changed.save(str(model))                        # what the workers will load under the same name
    with pytest.raises(SearcherError, match="^Ray workers at local cannot embed: the Ray worker's model .* has "
                                            "other weights than the driver's"):
        RayEncoder(local, "local").encode(["a text to embed"])


def test_a_killed_driver_keeps_its_committed_batches_and_a_rerun_resumes(tmp_path: Path):
    folder = _big_folder(tmp_path / "field", 330)
    idx = tmp_path / "idx"
    proc = subprocess.Popen([sys.executable, "-m", "searcher", "index", str(folder), "--index", str(idx),
                             "--ray-address", "local", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for_commit(proc, idx, 0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    committed = Searcher(idx).info()["files"]
    assert 0 < committed < 330
    r = run_cli("index", str(folder), "--index", str(idx), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])["summary"]
    assert (summary["added"], summary["unchanged"]) == (330 - committed, committed)   # nothing redone
