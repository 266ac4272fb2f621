"""The indexer's steps: texts from many files embedded longest first, whole documents committed, the
embedding cache keeping a cut-short run's work, and the int8 encoder kept per index."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from searcher import Searcher, indexing
from searcher.embed.encoder import Encoder
from searcher.errors import SearcherError

from .conftest import write_tree

WORDS = "river stone cloud lantern meadow harbor violin glacier orchard compass".split()


def _text(seed: int, sentences: int) -> str:
    return " ".join(f"The {WORDS[(seed + i) % 10]} near the {WORDS[(seed * 3 + i) % 10]} is number {seed}-{i}."
                    for i in range(sentences))


def _folder(root: Path) -> Path:
    """Files of very different lengths, one of many chunks, and one text shared by two files."""
    files = {f"f{i}.txt": _text(i, 1 + (i * 7) % 5) for i in range(12)}
    files["long.txt"] = "\n\n".join(_text(100 + i, 4) for i in range(8))
    files["twin.txt"] = files["f3.txt"]
    return write_tree(root, files)


def _db(idx: Path) -> sqlite3.Connection:
    return sqlite3.connect(idx / "searcher.db")


def test_small_steps_store_the_right_vector_for_every_chunk(tmp_path: Path, tiny_model: Path, monkeypatch):
    monkeypatch.setattr(indexing, "STEP_CHUNKS", 3)
    folder = _folder(tmp_path / "docs")
    idx = tmp_path / "idx"
    report = Searcher(idx, model=str(tiny_model), chunk_tokens=24, overlap_tokens=0).index(folder)
    with _db(idx) as con:
        rows = con.execute("SELECT c.text, e.vector FROM chunks c JOIN embeddings e USING (text_hash)").fetchall()
        generation = int(con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    distinct = {t for t, _ in rows}
    assert report.count("added") == 14 and len(rows) > len(distinct) > 20
    # every text embedded once (the twin's shared text counted for one of the two files) ...
    assert report.embedded == len(distinct)
    by = {Path(f.path).name: f for f in report.files}
    assert by["long.txt"].chunks > 3 and by["long.txt"].embedded == by["long.txt"].chunks
    assert sorted([by["f3.txt"].embedded, by["twin.txt"].embedded]) == [0, by["f3.txt"].chunks]
    # ... in steps of 3 texts, each its own commit ...
    assert generation >= len(distinct) // 3
    # ... and each stored vector is the encoding of its own chunk's text, whatever batch it came in
    enc = Encoder(str(tiny_model))
    texts = [t for t, _ in rows]
    stored = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in rows])
    assert np.allclose(stored, enc.encode(texts), atol=1e-5)
    hits = Searcher(idx, model=str(tiny_model)).search(texts[0], k=1, mode="dense")
    assert hits[0].text == texts[0]


def test_a_run_cut_short_keeps_the_vectors_of_documents_not_yet_committed(tmp_path: Path, tiny_model: Path,
                                                                           monkeypatch):
    folder = write_tree(tmp_path / "docs", {"a_long.txt": "\n\n".join(_text(i, 4) for i in range(6)),
                                            "b.txt": _text(50, 2), "c.txt": _text(60, 2)})
    idx = tmp_path / "idx"
    monkeypatch.setattr(indexing, "WINDOW_CHUNKS", 2)   # a step as soon as two texts wait
    monkeypatch.setattr(indexing, "STEP_CHUNKS", 1)

    def stop_after_first_file(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    s = Searcher(idx, model=str(tiny_model), chunk_tokens=24, overlap_tokens=0)
    with pytest.raises(KeyboardInterrupt):
        s.index(folder, progress=stop_after_first_file)
    with _db(idx) as con:
        assert con.execute("SELECT count(*) FROM documents").fetchone()[0] == 0   # a_long.txt was not complete
        cached = con.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert cached >= 1                                                          # but its step's work is kept
    monkeypatch.undo()
    report = Searcher(idx, model=str(tiny_model)).index(folder)
    long = next(f for f in report.files if f.path.endswith("a_long.txt"))
    assert long.status == "added" and long.embedded == long.chunks - cached
    with _db(idx) as con:   # the cache holds what the chunks use, no more
        assert con.execute("SELECT count(*) FROM embeddings").fetchone()[0] == \
            con.execute("SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0]


def test_int8_precision_is_recorded_and_kept(tmp_path: Path, notes: Path, tiny_model: Path):
    model = str(tiny_model)
    idx8, idx32 = tmp_path / "i8", tmp_path / "i32"
    Searcher(idx8, model=model, precision="int8").index(notes)
    Searcher(idx32, model=model).index(notes)
    m8, m32 = (json.loads((i / "manifest.json").read_text()) for i in (idx8, idx32))
    assert (m8["encoder"]["precision"], m32["encoder"]["precision"]) == ("int8", "float32")
    assert m8["model"]["fingerprint"] == m32["model"]["fingerprint"]   # the same published weights
    with _db(idx8) as a, _db(idx32) as b:
        q = "SELECT e.vector FROM chunks c JOIN embeddings e USING (text_hash) ORDER BY c.text"
        v8 = np.stack([np.frombuffer(r[0], dtype=np.float32) for r in a.execute(q)])
        v32 = np.stack([np.frombuffer(r[0], dtype=np.float32) for r in b.execute(q)])
    cos = (v8 * v32).sum(axis=1)
    assert np.abs(v8 - v32).max() > 1e-5 and cos.min() > 0.99   # quantized: near, not float32-equal
    # a later run and a search use the index's own precision; asking for another is an error
    assert Searcher(idx8).search("rotate the logs", k=1, mode="dense")
    qe8, qe32 = (Searcher(i).info()["query_encoder"] for i in (idx8, idx32))
    assert qe8["active"] == "torch" and "int8" in qe8["why_torch"] and qe32["active"] == "onnx"
    with pytest.raises(SearcherError, match="encoder precision int8, not float32"):
        Searcher(idx8, precision="float32").index(notes)
    with pytest.raises(SearcherError, match="precision 'int4' is not one of float32, int8"):
        Searcher(tmp_path / "bad", model=model, precision="int4").index(notes)
