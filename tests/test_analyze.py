"""similar, duplicates, outliers, topics and map on a small real folder: 20 Cranfield abstracts
(aeronautics), a planted exact copy and an edited copy of one of them, and one SciFact abstract
(biomedicine) as the stray. Through the API, the CLI and the HTTP server."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from searcher import Searcher
from searcher.errors import SearcherError

from .conftest import run_cli

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")


def _corpus(name: str, n: int) -> list[str]:
    out = []
    with gzip.open(DATA / name / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if len(d["text"]) > 400:
                out.append(f"{d['title']}\n\n{d['text']}")
            if len(out) == n:
                return out
    return out


def _edited(text: str) -> str:
    """The same document edited: a sentence dropped, two swapped, re-wrapped at 60 characters."""
    sentences = [s.strip() + " ." for s in text.split(" .") if s.strip()]
    del sentences[2]
    sentences[0], sentences[1] = sentences[1], sentences[0]
    words, lines, line = " ".join(sentences).split(), [], []
    for w in words:
        line.append(w)
        if len(" ".join(line)) > 60:
            lines.append(" ".join(line))
            line = []
    return "\n".join(lines + [" ".join(line)]) + "\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    if not (DATA / "cranfield").is_dir():
        pytest.skip("the shared test collections are not here")
    root = tmp_path_factory.mktemp("analyze")
    docs = root / "docs"
    (docs / "aero").mkdir(parents=True)
    (docs / "bio").mkdir()
    aero = _corpus("cranfield", 20)
    for i, text in enumerate(aero):
        (docs / "aero" / f"a{i:02}.txt").write_text(text)
    (docs / "aero" / "a05-edited.txt").write_text(_edited(aero[5]))
    (docs / "aero" / "A07-COPY.txt").write_text("  " + aero[7].upper().replace(" ", "  ") + "\n")
    (docs / "bio" / "stray.txt").write_text(_corpus("scifact", 1)[0])
    outside = root / "outside-a09.txt"
    outside.write_text(_edited(aero[9]))
    index = root / "index"
    with Searcher(index) as s:
        s.index(docs)
    return {"index": index, "docs": docs, "outside": outside}


def test_similar_finds_the_edited_copy_first(corpus):
    docs = corpus["docs"]
    with Searcher(corpus["index"]) as s:
        found = s.similar(str(docs / "aero" / "a05.txt"), k=5)
        assert found[0].path == str(docs / "aero" / "a05-edited.txt")
        assert str(docs / "aero" / "a05.txt") not in [d.id for d in found]
        assert len(found) == 5 and found[0].score > found[-1].score and 0.8 < found[0].cosine <= 1.0001
        by_chunk = s.similar(str(docs / "aero" / "a05-edited.txt") + "#0", k=1)
        assert by_chunk[0].path == str(docs / "aero" / "a05.txt")
        # a file that is not indexed is read, chunked and embedded like any file
        assert s.similar(file=corpus["outside"], k=1)[0].path == str(docs / "aero" / "a09.txt")
        # filters restrict the answer
        assert all(d.path.endswith("stray.txt") for d in s.similar(str(docs / "aero" / "a05.txt"), k=3,
                                                                      filters={"path": "bio/*"}))


def test_similar_fuses_shared_words_with_meaning(tmp_path):
    """The keyword leg counts: the note worded like the asked one comes first although two others are
    closer by cosine alone (with the leg dead — as after a change of keyword_search's arguments —
    the order is the cosine's)."""
    notes = {
        "q.txt": "Calibration log for sensor QX7731: drift measured after the QX7731 firmware update, corrected by "
                 "a new offset.",
        "same-words.txt": "Calibration log for the pressure sensor: drift measured after the firmware update, "
                          "corrected with a new offset.",
        "b.txt": "Sensor drift after a firmware update is corrected by recalibrating the offset.",
        "c.txt": "Firmware updates can change a sensor's calibration offset; measure drift afterwards.",
        "d.txt": "A recipe for apple pie with cinnamon and butter.",
    }
    for name, text in notes.items():
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / name).write_text(text)
    with Searcher(tmp_path / "index") as s:
        s.index(tmp_path / "docs")
        found = s.similar(str(tmp_path / "docs" / "q.txt"), k=4)
    assert Path(found[0].path).name == "same-words.txt"
    assert found[0].cosine < max(f.cosine for f in found[1:])


def test_duplicates_tiers(corpus):
    aero = corpus["docs"] / "aero"
    with Searcher(corpus["index"]) as s:
        groups = s.duplicates(tiers=["exact", "near"])
        pairs = {(frozenset((p.a, p.b)), p.tier) for g in groups for p in g.pairs}
        assert pairs == {(frozenset((str(aero / "a07.txt"), str(aero / "A07-COPY.txt"))), "exact"),
                         (frozenset((str(aero / "a05.txt"), str(aero / "a05-edited.txt"))), "near")}
        near = next(p for g in groups for p in g.pairs if p.tier == "near")
        assert 0.6 <= near.score < 1.0
        # a threshold of 1 keeps only untouched text; chunks are compared with --chunks
        assert {g.tier for g in s.duplicates(tiers=["near"], near_threshold=1.0)} == set()
        chunk_pairs = [p for g in s.duplicates(tiers=["exact"], chunks=True) for p in g.pairs]
        assert chunk_pairs and all("#" in p.a and "#" in p.b for p in chunk_pairs)
        with pytest.raises(SearcherError, match="threshold must be between 0 and 1"):
            s.duplicates(threshold=1.5)
        with pytest.raises(SearcherError, match="tier must be one of"):
            s.duplicates(tiers=["fuzzy"])


def test_outliers_rank_the_stray_first(corpus):
    with Searcher(corpus["index"]) as s:
        found = s.outliers(k=3)
        assert found[0].path.endswith("bio/stray.txt")
        assert found[0].score > found[1].score > 0 and found[0].score > 1.3
        with pytest.raises(SearcherError, match="k must be a positive"):
            s.outliers(k=0)


def test_topics_are_stable_and_cover_every_document(corpus):
    with Searcher(corpus["index"]) as s:
        first, second = s.topics(), s.topics()
        assert first == second and len(first) >= 2
        assert sum(t.size for t in first) == 23
        assert all(t.label and t.representatives for t in first)
        assert len(s.topics(3)) == 3
        with pytest.raises(SearcherError, match="at least 2"):
            s.topics(1)


def test_topics_left_to_choose_find_the_sources_of_a_mixed_folder(tmp_path):
    """20 aeronautics abstracts, 20 biomedical abstracts and 20 news sentences: the number of topics
    chosen by the dendrogram's widest gap separates the three sources (NMI ≥ 0.7, the issue's bar)."""
    from sklearn.metrics import normalized_mutual_info_score

    if not (DATA / "mrpc-train").is_dir():
        pytest.skip("the shared test collections are not here")
    with gzip.open(DATA / "mrpc-train" / "pairs.tsv.gz", "rt", encoding="utf-8-sig") as f:
        news = list(dict.fromkeys(line.split("\t")[3] for line in f.read().splitlines()[1:]))[:20]
    sources = {"aero": _corpus("cranfield", 20), "bio": _corpus("scifact", 20), "news": news}
    for folder, texts in sources.items():
        (tmp_path / "docs" / folder).mkdir(parents=True)
        for i, text in enumerate(texts):
            (tmp_path / "docs" / folder / f"{i:02}.txt").write_text(text)
    with Searcher(tmp_path / "index") as s:
        s.index(tmp_path / "docs")
        found = s.topics()
    topic_of = {doc: t.id for t in found for doc in t.members}
    assert sum(t.size for t in found) == len(topic_of) == 60 and 2 <= len(found) <= 6
    source = [Path(doc).parent.name for doc in topic_of]
    assert normalized_mutual_info_score(source, list(topic_of.values())) >= 0.7


def test_map_html_is_self_contained_and_holds_every_document(corpus, tmp_path):
    with Searcher(corpus["index"]) as s:
        report = s.map(tmp_path / "corpus.html", color_by="folder")
        html = (tmp_path / "corpus.html").read_text().replace("\\u002f", "/")   # plotly's JSON escapes '/'
        assert report.documents == 23
        for f in corpus["docs"].rglob("*.txt"):
            assert str(f) + "\\u003cbr\\u003e" in html     # the hover text: path<br>first line
        assert "<script src=" not in html and len(html) > 1_000_000     # plotly.js inlined, nothing fetched
        s.map(tmp_path / "corpus.png")
        assert (tmp_path / "corpus.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(SearcherError, match=r"\.html .* or \.png"):
            s.map(tmp_path / "corpus.svg")


def test_bad_input_is_one_line(corpus, tmp_path):
    with Searcher(corpus["index"]) as s:
        with pytest.raises(SearcherError, match="not an indexed document"):
            s.similar("no/such/file.txt")
        with pytest.raises(SearcherError, match="k must be a positive"):
            s.similar(str(corpus["docs"] / "aero" / "a01.txt"), k=0)
        with pytest.raises(SearcherError, match=r"has chunks 0\.\.\d+, not 9"):
            s.similar(str(corpus["docs"] / "aero" / "a01.txt") + "#9")
        with pytest.raises(SearcherError, match="no documents that pass the filters"):
            s.outliers(filters={"path": "nothing/*"})
    with Searcher(tmp_path / "empty") as s:
        s.delete(s.add(["a placeholder that only creates the index"]))
        with pytest.raises(SearcherError, match="has no documents"):
            s.topics()
    with pytest.raises(SearcherError, match="no index at"):
        Searcher(tmp_path / "none").duplicates()


def test_cli(corpus, tmp_path):
    index, aero = str(corpus["index"]), corpus["docs"] / "aero"
    r = run_cli("similar", str(aero / "a05.txt"), "-k", "2", "--json", "-i", index)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["path"] == str(aero / "a05-edited.txt")
    r = run_cli("duplicates", "--tier", "exact", "--tier", "near", "-i", index)
    assert r.returncode == 0 and "exact" in r.stdout and "a05-edited.txt" in r.stdout, r.stderr
    r = run_cli("outliers", "-k", "1", "--json", "-i", index)
    assert json.loads(r.stdout)["path"].endswith("stray.txt")
    r = run_cli("topics", "--topics", "2", "--json", "-i", index)
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == [0, 1]
    r = run_cli("map", "--out", str(tmp_path / "m.html"), "-i", index)
    assert r.returncode == 0 and "23 documents" in r.stdout and (tmp_path / "m.html").is_file()
    for args, message in ((("similar", "nope.txt"), "not an indexed document"),
                          (("outliers", "-k", "0"), "k must be a positive"),
                          (("duplicates", "--threshold", "2"), "threshold must be between 0 and 1")):
        r = run_cli(*args, "-i", index)
        assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_http(corpus, tmp_path):
    httpx = pytest.importorskip("httpx")
    from .test_server import start_server, stop_server

    aero = corpus["docs"] / "aero"
    proc, url = start_server("--index", str(corpus["index"]), log=tmp_path / "server.log")
    try:
        schema = httpx.get(url + "/openapi.json").json()
        assert {"/similar", "/duplicates", "/outliers", "/topics", "/map"} <= set(schema["paths"])
        r = httpx.post(url + "/similar", json={"id": str(aero / "a05.txt"), "k": 1}, timeout=120)
        assert r.json()["similar"][0]["path"] == str(aero / "a05-edited.txt")
        r = httpx.post(url + "/duplicates", json={"tiers": ["exact"]}, timeout=120)
        assert r.json()["groups"][0]["tier"] == "exact"
        r = httpx.post(url + "/outliers", json={"k": 1}, timeout=120)
        assert r.json()["outliers"][0]["path"].endswith("stray.txt")
        r = httpx.post(url + "/topics", json={"n": 2}, timeout=120)
        assert len(r.json()["topics"]) == 2
        r = httpx.post(url + "/map", json={"format": "png"}, timeout=120)
        assert r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
        r = httpx.post(url + "/similar", json={"id": "nope"}, timeout=120)
        assert r.status_code == 400 and "not an indexed document" in r.json()["error"]
        r = httpx.post(url + "/duplicates", json={"threshold": 1.5}, timeout=120)
        assert r.status_code in (400, 422)
    finally:
        stop_server(proc)
