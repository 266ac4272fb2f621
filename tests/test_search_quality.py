"""Hybrid search, Chinese keywords, filters inside the search, grouping, reranking and eval.

Every test that builds an index runs once per vector store (FAISS, and Milvus through milvus-lite):
the module's fixtures are parametrised by store, the other tests take ``vector_store``."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from searcher import Searcher, SearcherError
from searcher.records import Filters

from .conftest import STORES, create_index, run_cli, store_config, write_tree

ERRORS = {f"errors/e{i}.txt": f"Service failure code ERR_0x{c}: the upstream returned an error and the request "
                              "was aborted after the retry budget ran out."
          for i, c in enumerate(["7f3b", "8f3a", "7e3a", "7f4a", "6f3a", "7f3a", "9a1c"])}
MIXED = {
    "car.md": "My car's engine failed to turn over this morning, so I was late to work.",
    "garden.md": "Water tomato plants deeply twice a week and tie the stems to stakes.",
    "tax.md": "File the annual tax return before the end of April to avoid penalties.",
}


@pytest.fixture(scope="module", params=STORES)
def corpus(request, tmp_path_factory) -> tuple[Path, Searcher]:
    base = tmp_path_factory.mktemp("quality")
    folder = write_tree(base / "docs", {**ERRORS, **MIXED})
    s = Searcher(base / "idx", vector_store=store_config(request.param, base))
    s.index(folder)
    return folder, s


def test_identifier_only_keywords_can_answer(corpus):
    folder, s = corpus
    exact = str(folder / "errors" / "e5.txt")
    assert s.search("ERR_0x7f3a", k=1, mode="keyword")[0].path == exact
    assert s.search("ERR_0x7f3a", k=1)[0].path == exact                 # hybrid is the default
    assert s.search("what does ERR_0x7f3a mean", k=1)[0].path == exact


def test_paraphrase_only_dense_can_answer(corpus):
    folder, s = corpus
    query = "automobile would not start"
    assert s.search(query, k=5, mode="keyword") == []                  # no word in common
    assert s.search(query, k=1, mode="dense")[0].path.endswith("car.md")
    assert s.search(query, k=1)[0].path.endswith("car.md")


def test_chinese_query_finds_chinese_passage_with_the_english_model(tmp_path: Path, vector_store):
    docs = {
        "logs.txt": "日志轮转由 logrotate 每晚执行。要保留更多天的日志，请修改配置文件中的保留数量。",
        "backup.txt": "数据库备份在每周日凌晨两点运行，备份文件会复制到异地存储桶。",
        "network.txt": "如果网络连接超时，请检查防火墙规则和代理服务器的设置。",
        "bread.txt": "面包需要先发酵一夜，然后在二百三十度的烤箱中烘烤四十分钟。",
        "english.md": "Backups of the database run every Sunday night.",
    }
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    s.index(write_tree(tmp_path / "zh", docs))
    from searcher.embed.encoder import load_encoder
    from searcher.search.query import dense_weight

    assert dense_weight(load_encoder(), "数据库备份什么时候运行") == 0.0     # the model sees nothing
    assert dense_weight(load_encoder(), "when do backups run") == 1.0
    assert s.search("数据库备份什么时候运行？", k=1)[0].path.endswith("backup.txt")
    assert s.search("网络超时怎么办", k=1)[0].path.endswith("network.txt")
    assert s.search("怎样保留更多日志", k=1)[0].path.endswith("logs.txt")
    # mixed Chinese and English
    assert s.search("logrotate 日志", k=1)[0].path.endswith("logs.txt")


@pytest.fixture(scope="module", params=STORES)
def many(request, tmp_path_factory) -> tuple[Path, Searcher]:
    """150 files about volcanoes in a/, and 12 about volcanoes too in b/, tagged by metadata and dated."""
    base = tmp_path_factory.mktemp("filters")
    files = {f"a/v{i:03d}.md": f"Volcano report {i}: lava flows and ash clouds near the crater." for i in range(150)}
    files |= {f"b/w{i:02d}.txt": f"Field note {i} on a volcano: the eruption sent ash over the valley."
              for i in range(12)}
    folder = write_tree(base / "docs", files)
    old = time.time() - 30 * 86400
    for p in (folder / "b").iterdir():
        if int(p.stem[1:]) < 4:
            os.utime(p, (old, old))
    s = Searcher(base / "idx", vector_store=store_config(request.param, base))
    s.index(folder)
    s.add(["A volcano erupted in the story.", "Another volcano poem."], ids=["s1", "s2"],
          metadata=[{"kind": "story", "year": 2020}, {"kind": "poem", "year": 2021}])
    return folder, s


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_filter_returns_k_even_when_matches_rank_low(many, mode):
    folder, s = many
    unfiltered = s.search("volcano lava crater", k=100, mode=mode)
    assert sum("/b/" in (h.path or "") for h in unfiltered[:20]) < 10   # b/ is not on top by itself
    hits = s.search("volcano lava crater", k=10, mode=mode, filters={"path": "b/*"})
    assert len(hits) == 10 and all("/b/" in h.path for h in hits)


def test_each_filter(many):
    folder, s = many
    q = "volcano"
    assert {h.path for h in s.search(q, k=50, filters=Filters(types=("txt",)))} == \
        {str(p) for p in (folder / "b").iterdir()}
    old = s.search(q, k=50, filters={"modified_before": time.time() - 86400})
    assert sorted(Path(h.path).name for h in old) == ["w00.txt", "w01.txt", "w02.txt", "w03.txt"]
    recent_b = s.search(q, k=50, filters={"modified_after": time.time() - 86400, "path": "*/b/*"})
    assert len(recent_b) == 8
    assert [h.id for h in s.search(q, k=10, filters={"metadata": {"kind": "poem"}})] == ["s2"]
    assert {h.id for h in s.search(q, k=10, filters={"metadata": {"year": [2020, 2021]}})} == {"s1", "s2"}
    # fewer matches than k: all of them; none: an empty list
    assert len(s.search(q, k=10, filters={"path": "*/b/w00.txt"})) == 1
    assert s.search(q, k=10, filters={"path": "*/nowhere/*"}) == []
    assert s.search(q, k=10, filters={"metadata": {"kind": "novel"}}) == []
    with pytest.raises(SearcherError, match="filters"):
        s.search(q, filters={"colour": "red"})


def test_group_by_file_and_min_score(tmp_path: Path, vector_store):
    long = "\n\n".join(f"Section {i}. The garbage collector pauses when the heap is full; tuning the "
                       f"young generation size reduces pause {i}. " * 3 for i in range(12))
    folder = write_tree(tmp_path / "d", {"gc.md": long, "other.md": "Garbage collection pauses in Java.",
                                         "cats.md": "Cats sleep most of the day."})
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    s.index(folder)
    flat = s.search("garbage collector pause tuning", k=5)
    assert sum(h.path.endswith("gc.md") for h in flat) >= 3
    grouped = s.search("garbage collector pause tuning", k=5, group_by_file=True)
    assert len({h.id for h in grouped}) == len(grouped) == 3
    assert grouped[0].path.endswith("gc.md") and grouped[0].score == flat[0].score
    dense = s.search("garbage collector pause tuning", k=10, mode="dense", min_score=0.3)
    assert dense and all(h.score >= 0.3 for h in dense) and all(not h.path.endswith("cats.md") for h in dense)


def test_keyword_index_follows_updates_and_deletes(tmp_path: Path, vector_store):
    folder = write_tree(tmp_path / "d", {"a.md": "The zanzibar protocol is deprecated.", "b.md": "Unrelated."})
    s = Searcher(tmp_path / "idx", vector_store=vector_store)
    s.index(folder)
    assert s.search("zanzibar", k=5, mode="keyword")[0].path.endswith("a.md")
    (folder / "a.md").write_text("The kilimanjaro protocol replaced it.")
    s.index(folder)
    assert s.search("zanzibar", k=5, mode="keyword") == []
    assert s.search("kilimanjaro", k=5, mode="keyword")[0].path.endswith("a.md")
    s.delete([str(folder / "a.md")])
    assert s.search("kilimanjaro", k=5, mode="keyword") == []


def test_rerank_reorders_by_cross_encoder_scores(corpus, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    _, s = corpus
    q = "request aborted after retries"
    hits = s.search(q, k=5, rerank=str(tiny_cross_encoder))
    ce = CrossEncoder(str(tiny_cross_encoder), device="cpu")
    expected = ce.predict([(q, h.text) for h in hits])
    assert [h.score for h in hits] == pytest.approx([float(x) for x in expected], abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(SearcherError, match="cannot load reranker"):
        s.search(q, rerank=str(Path("/nonexistent/model")))


def test_cli_search_options_and_snippet(corpus):
    folder, s = corpus
    s.close()   # milvus-lite serves one process at a time: let the command open the file
    r = run_cli("search", "ERR_0x7f3a", "--index", str(s.path), "--mode", "keyword", "-k", "1", "--json")
    hit = json.loads(r.stdout)
    assert hit["path"].endswith("e5.txt") and "ERR_0x7f3a" in hit["snippet"] and hit["snippet_line"] == 1
    r = run_cli("search", "failure", "--index", str(s.path), "-t", "md")
    assert r.returncode == 0 and "errors/" not in r.stdout
    r = run_cli("search", "x", "--index", str(s.path), "--meta", "novalue")
    assert r.returncode == 1 and "KEY=VALUE" in r.stderr


def test_eval_command_on_a_small_collection(tmp_path: Path, vector_store):
    coll = tmp_path / "mini"
    coll.mkdir()
    docs = [("d1", "Lava", "Volcanoes erupt molten lava."), ("d2", "Bread", "Bake sourdough bread overnight."),
            ("d3", "Tax", "File the tax return in April."), ("d4", "Cars", "The engine would not start.")]
    (coll / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, t, x in docs))
    (coll / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in
                                                [("q1", "volcanic eruption"), ("q2", "baking bread"),
                                                 ("q3", "automobile trouble")]))
    (coll / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq3\td4\t1\n")
    if vector_store is not None:   # `eval` creates FAISS indexes: start an empty one in Milvus for it
        create_index(tmp_path / "idx", vector_store)
    r = run_cli("eval", str(coll), "--mode", "all", "--index", str(tmp_path / "idx"), "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["mode"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == {"dense", "keyword", "hybrid"}
    assert rows["dense"]["ndcg@10"] == pytest.approx(1.0) and rows["hybrid"]["ndcg@10"] == pytest.approx(1.0)
    assert rows["keyword"]["recall@100"] < 1.0       # "automobile trouble" shares no word with d4
    assert all(x["queries"] == 3 and x["p95_ms"] >= x["p50_ms"] > 0 for x in rows.values())
    r = run_cli("eval", str(coll), "--index", str(tmp_path / "idx"))   # reuses the index
    assert r.returncode == 0 and r.stdout.splitlines()[1].startswith("hybrid")


def test_fusion_functions():   # pure functions: no index, no vector store
    from searcher.search.fusion import rrf, zscore

    dense = [(1, 0.52), (2, 0.51), (3, 0.50), (7, 0.49)]
    kw = [(3, 12.0), (4, 2.0), (5, 1.5), (6, 1.0)]
    fused = dict(zscore([(1.0, dense), (1.0, kw)]))
    # 3 is close behind in dense but far ahead in keywords: z-scores keep that margin, ranks do not
    assert max(fused, key=fused.get) == 3 and set(fused) == {1, 2, 3, 4, 5, 6, 7}
    assert [c for c, _ in zscore([(0.0, dense), (1.0, kw)])] == [3, 4, 5, 6]   # a blind leg has no say
    r = rrf([(1.0, dense), (1.0, kw)])
    assert r[0] == (3, pytest.approx((1 / 63 + 1 / 61) / (2 / 61)))
    assert r[1][0] == 1
