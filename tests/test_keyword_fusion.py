"""Search quality II: the keyword leg is Lucene's BM25 (checked against bm25s), a word found in only
a few chunks puts them first in the default mode, and known items are found first.

One index of 80 short real documents (SciFact abstracts where the collection is at hand) serves
the module; FAISS only, the fusion does not depend on the vector store."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from searcher import Searcher
from searcher.search.evaluation import known_item_shares, known_items
from searcher.store import keyword

from .conftest import real_documents, run_cli

RARE = {1: "vexillology", 2: "zymurgy", 3: "quipucamayoc"}   # word → in this many documents


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quality2") / "docs"
    root.mkdir()
    for i, text in enumerate(real_documents(80).values()):
        (root / f"{i}.txt").write_text(text + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def index(folder: Path) -> Path:
    path = folder.parent / "idx"
    with Searcher(path) as s:
        s.index(folder)
    return path


def test_a_unique_word_appended_to_one_file_is_found_first_after_reindexing(folder: Path, index: Path):
    # the example; the file is put back afterwards for the other tests
    path = folder / "1.txt"
    original = path.read_text(encoding="utf-8")
    path.write_text(original + "zeppelin hydrogen airship mooring mast\n", encoding="utf-8")
    try:
        with Searcher(index) as s:
            assert s.index(folder).summary()["updated"] == 1
            assert [Path(h.path).name for h in s.search("zeppelin", k=3, mode="keyword")] == ["1.txt"]
            assert Path(s.search("zeppelin airship mooring mast", k=3)[0].path).name == "1.txt"
        r = run_cli("search", "zeppelin airship mooring mast", "-k", "3", "--index", str(index), "--json")
        assert r.returncode == 0, r.stderr
        assert Path(json.loads(r.stdout.splitlines()[0])["path"]).name == "1.txt"
    finally:
        path.write_text(original, encoding="utf-8")
        with Searcher(index) as s:
            s.index(folder)


@pytest.mark.parametrize("hits", [1, 2, 3])
def test_a_keyword_leg_with_few_hits_puts_them_first(index: Path, folder: Path, hits: int):
    word = RARE[hits]
    with Searcher(index) as s:
        ids = s.add([f"{text}\nSee also the {word} notes." for text in list(real_documents(80 + hits).values())[80:]],
                    ids=[f"{word}-{i}" for i in range(hits)])
        try:
            assert {h.id for h in s.search(word, k=hits, mode="keyword")} == set(ids)
            assert {h.id for h in s.search(word, k=hits)} == set(ids)            # the default, hybrid
            assert {h.id for h in s.search(f"{word} notes", k=hits)} == set(ids)
        finally:
            s.delete(ids)


def test_known_items_are_found_first_and_never_below_keyword_mode(index: Path, folder: Path):
    corpus = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.txt"))]
    items = known_items(corpus, 12)
    assert {i.kind for i in items} == {"rare", "phrase"} and len(items) == 24
    with Searcher(index) as s:
        def run(mode: str):
            return known_item_shares(lambda q: [Path(h.path).name for h in s.search(q, k=3, mode=mode)], items)
        keyword_mode, default = run("keyword"), run("hybrid")
    assert default["rare@1"] == 1.0 and default["phrase@1"] == 1.0
    assert all(default[k] >= keyword_mode[k] for k in default)


def _bm25s_over_fts5_tokens(db: Path):
    """The script's reference, bm25s on exactly the tokens FTS5 holds (scripts/check_keyword_bm25s.py)."""
    pytest.importorskip("bm25s")
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "check_keyword_bm25s.py"
    spec = importlib.util.spec_from_file_location("check_keyword_bm25s", script)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(script.parent))   # it imports benchlib beside it
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(script.parent))
    return module.bm25s_over_fts5_tokens(db)


def test_keyword_scores_equal_bm25s_with_lucenes_defaults(index: Path, folder: Path):
    retriever, ids = _bm25s_over_fts5_tokens(index / "searcher.db")
    queries = ["the effect of dietary intake on risk of disease in older adults",
               "cell cell cell signalling",                     # a repeated word counts three times
               "gene expression gene regulation in mouse models of cancer progression and treatment",
               "what were the results of the randomized trial? results were not significant",
               *[q.query for q in known_items([(p.name, p.read_text()) for p in sorted(folder.glob('*.txt'))], 5)]]
    with Searcher(index) as s:
        for q in queries:
            toks = keyword.query_tokens(q)
            ref = retriever.get_scores([retriever.vocab_dict[t] for t in toks if t in retriever.vocab_dict])
            order = sorted((i for i in range(len(ids)) if ref[i] > 0), key=lambda i: (-ref[i], ids[i]))[:10]
            hits = s.search(q, k=10, mode="keyword")
            assert [h.score for h in hits] == pytest.approx([float(ref[i]) for i in order], rel=1e-5), q
            assert len(hits) == len(order)


def test_keyword_statistics_come_from_fts5_exactly(index: Path):
    from searcher.store.sqlite import Store

    store = Store.open(index / "searcher.db", 384)
    n, avgdl = store.keyword_stats()                 # read from FTS5's averages record ...
    store.conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, chunks_fts, instance)")
    total = store.conn.execute("SELECT count(*) FROM temp.v").fetchone()[0]
    chunks = store.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    store.close()
    assert n == chunks and avgdl == pytest.approx(total / chunks)   # ... equal to counting


def test_fts_tokens_are_what_fts5_stores():
    assert keyword.fts_tokens("earth's flow café") == ["earth", "s", "flow", "cafe"]
    assert keyword.query_tokens("flow, flow and the FLOW") == ["flow", "flow", "flow"]
    assert keyword.phrase_expression(["flow", "flat", "plate"]) == '"flow flat plate"'


@pytest.mark.parametrize("hits", [1, 2, 3])
def test_zscore_counts_the_zeros_of_a_short_keyword_leg(hits: int):   # pure function, no index
    from searcher.search.fusion import Leg, zscore

    dense = [(i, 0.6 - i / 1000) for i in range(100)]             # the keyword hits are not among these
    kw = [(1000 + i, 8.0 - i) for i in range(hits)]
    fused = [cid for cid, _ in zscore([Leg(1.0, dense), Leg(1.0, kw, 0.0)])]
    assert sorted(fused[:hits]) == [1000 + i for i in range(hits)]
    # without knowing that the other chunks score 0 the hits are their own mean: no say at all
    assert zscore([Leg(1.0, dense), Leg(1.0, kw)])[0][0] == 0
