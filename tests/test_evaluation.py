"""Our metrics against trec_eval itself (pytrec_eval wraps its C code), and collection loading."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from searcher.errors import SearcherError
from searcher.search.evaluation import load_collection, mrr, ndcg, recall

pytrec_eval = pytest.importorskip("pytrec_eval")


def test_metrics_match_trec_eval():
    rng = random.Random(3)
    docs = [f"d{i}" for i in range(60)]
    qrels, runs = {}, {}
    for q in range(25):
        judged = rng.sample(docs, rng.randint(1, 15))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3, 4]) for d in judged}
        if not any(qrels[f"q{q}"].values()):
            qrels[f"q{q}"][judged[0]] = 2
        ranking = rng.sample(docs, rng.randint(5, 60))
        runs[f"q{q}"] = ranking
    trec_run = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in runs.items()}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "recip_rank"}).evaluate(trec_run)
    for q, ranking in runs.items():
        assert ndcg(ranking, qrels[q], 10) == pytest.approx(ref[q]["ndcg_cut_10"], abs=1e-9)
        assert recall(ranking, qrels[q], 100) == pytest.approx(ref[q]["recall_100"], abs=1e-9)
        # trec_eval's recip_rank has no cut-off: they agree whenever the first relevant is in the top 10
        full = mrr(ranking, qrels[q], len(ranking))
        assert full == pytest.approx(ref[q]["recip_rank"], abs=1e-9)
        assert mrr(ranking, qrels[q], 10) == (full if full >= 0.1 else 0.0)


def test_load_collection_gz_and_plain(tmp_path: Path):
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt") as f:
        f.write(json.dumps({"_id": "1", "title": "T", "text": "body"}) + "\n")
        f.write(json.dumps({"_id": "2", "title": "", "text": ""}) + "\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "a", "text": "q"}) + "\n"
                                            + json.dumps({"_id": "b", "text": "unjudged"}) + "\n")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\na\t1\t2\n")
    c = load_collection(tmp_path)
    assert c.corpus == [("1", "T\n\nbody")] and c.queries == [("a", "q")] and c.qrels == {"a": {"1": 2}}
    (tmp_path / "qrels.tsv").unlink()
    with pytest.raises(SearcherError, match="no qrels.tsv"):
        load_collection(tmp_path)
