"""Measure retrieval quality on a test collection: nDCG@10, Recall@100, MRR@10 and latency.

A collection is a folder with corpus.jsonl[.gz] ({"_id", "title", "text"}), queries.jsonl[.gz]
({"_id", "text"}) and qrels.tsv (query-id, corpus-id, score; a header line). Metrics follow
trec_eval: graded gains (the judged score, linear) with a log2(rank + 1) discount for nDCG, the
ideal ranking built from every judged-relevant document; a document is relevant when score > 0.
"""
from __future__ import annotations

import gzip
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import SearcherError


@dataclass(frozen=True)
class Collection:
    name: str
    corpus: list[tuple[str, str]]                  # (doc id, text to index)
    queries: list[tuple[str, str]]                 # (query id, text), only queries with a relevant doc
    qrels: dict[str, dict[str, int]]               # query id → doc id → graded relevance


def _open(folder: Path, stem: str) -> IO[str]:
    for name, opener in ((f"{stem}.jsonl.gz", gzip.open), (f"{stem}.jsonl", open)):
        if (folder / name).is_file():
            return opener(folder / name, "rt", encoding="utf-8")  # type: ignore[operator]
    raise SearcherError(f"{folder}: no {stem}.jsonl or {stem}.jsonl.gz (see `searcher eval --help` for the layout)")


def _jsonl(f: IO[str], what: str) -> Iterator[dict[str, Any]]:
    with f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise SearcherError(f"{what}: line {n} is not JSON") from None


def load_collection(folder: str | Path) -> Collection:
    folder = Path(folder)
    if not folder.is_dir():
        raise SearcherError(f"{folder}: no such folder")
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = (folder / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SearcherError(f"{folder}: no qrels.tsv") from None
    for n, line in enumerate(lines, 1):
        parts = line.split("\t")
        if n == 1 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(parts) < 3:
            if line.strip():
                raise SearcherError(f"{folder / 'qrels.tsv'}: line {n} needs query-id, corpus-id and score")
            continue
        qrels.setdefault(parts[0], {})[parts[1]] = int(float(parts[-1]))
    corpus = []
    for d in _jsonl(_open(folder, "corpus"), "corpus"):
        text = "\n\n".join(x for x in ((d.get("title") or "").strip(), (d.get("text") or "").strip()) if x)
        if text:
            corpus.append((str(d["_id"]), text))
    queries = [(str(q["_id"]), q["text"]) for q in _jsonl(_open(folder, "queries"), "queries")
               if any(g > 0 for g in qrels.get(str(q["_id"]), {}).values())]
    if not corpus or not queries:
        raise SearcherError(f"{folder}: needs at least one document and one judged query")
    return Collection(folder.name, corpus, queries, qrels)


def ndcg(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if rels.get(d, 0) > 0)
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    return len(relevant.intersection(ranking[:k])) / len(relevant) if relevant else 0.0


def mrr(ranking: Sequence[str], rels: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranking[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def evaluate(search: Callable[[str], list[str]], collection: Collection) -> dict[str, float]:
    """Run every query through ``search`` (query → ranked doc ids) and average the metrics."""
    scores: dict[str, list[float]] = {"ndcg@10": [], "recall@100": [], "mrr@10": []}
    latencies = []
    for qid, text in collection.queries:
        t0 = time.perf_counter()
        ranking = search(text)
        latencies.append((time.perf_counter() - t0) * 1000)
        rels = collection.qrels.get(qid, {})
        scores["ndcg@10"].append(ndcg(ranking, rels, 10))
        scores["recall@100"].append(recall(ranking, rels, 100))
        scores["mrr@10"].append(mrr(ranking, rels, 10))
    out = {name: statistics.fmean(v) for name, v in scores.items()}
    out |= {"queries": len(collection.queries), "p50_ms": percentile(latencies, 0.5),
            "p95_ms": percentile(latencies, 0.95)}
    return out


@dataclass(frozen=True)
class KnownItem:
    kind: str          # "rare": a word of this document only plus two common words of it; "phrase": copied words
    doc_id: str
    query: str


def known_items(corpus: Sequence[tuple[str, str]], n: int, seed: int = 13) -> list[KnownItem]:
    """Up to ``n`` queries of each kind for documents drawn at random (fixed seed) from ``corpus``.

    The query a person types to find a document they know: "rare" is one word that occurs in this
    document only (by its index term) and two of its words that are most common in the
    collection, in random order; "phrase" is 6 to 10 consecutive words of it that no other
    document contains. The document must come first."""
    import random
    import re

    from ..store import keyword

    word = re.compile(r"[A-Za-z]+")
    flat = [" ".join(text.split()) for _, text in corpus]
    df: dict[str, int] = {}
    for _, text in corpus:
        for t in set(keyword.terms(text)):
            df[t] = df.get(t, 0) + 1
    rng = random.Random(seed)
    order = list(range(len(corpus)))
    rng.shuffle(order)
    rare_q: list[KnownItem] = []
    phrase_q: list[KnownItem] = []
    for i in order:
        doc_id, text = corpus[i]
        words = {w: keyword.terms(w) for w in word.findall(text) if len(w) >= 3}
        single = {w: ts[0] for w, ts in words.items() if len(ts) == 1}
        single = {w: t for w, t in single.items() if t in df}   # "GLI" of "GLI1" is no index term of its own
        rare = sorted(w for w, t in single.items() if df[t] == 1 and len(w) >= 4)
        common: list[str] = []
        for w in sorted((w for w, t in single.items() if df[t] > 1), key=lambda w: (-df[single[w]], w)):
            if single[w] not in {single[c] for c in common}:
                common.append(w)
            if len(common) == 10:
                break
        if len(rare_q) < n and rare and len(common) >= 2:
            q = [rng.choice(rare), *rng.sample(common, 2)]
            rng.shuffle(q)
            rare_q.append(KnownItem("rare", doc_id, " ".join(q)))
        tokens = flat[i].split()
        if len(phrase_q) < n and len(tokens) >= 12:
            size = rng.randint(6, 10)
            start = rng.randrange(len(tokens) - size + 1)
            phrase = " ".join(tokens[start:start + size])
            if sum(phrase in f for f in flat) == 1:
                phrase_q.append(KnownItem("phrase", doc_id, phrase))
        if len(rare_q) >= n and len(phrase_q) >= n:
            break
    return rare_q + phrase_q


def known_item_shares(search: Callable[[str], list[str]], items: Sequence[KnownItem]) -> dict[str, float]:
    """Per kind, the share of items whose document ``search`` (query → ranked doc ids) puts first and
    within the top 3."""
    found: dict[str, list[tuple[bool, bool]]] = {}
    for item in items:
        ranking = search(item.query)
        found.setdefault(item.kind, []).append((ranking[:1] == [item.doc_id], item.doc_id in ranking[:3]))
    return {f"{kind}@{k}": statistics.fmean(x[j] for x in v) for kind, v in found.items() for j, k in ((0, 1), (1, 3))}
