"""Search quality, cross-validated: judged queries and known items, every mode, as a docs/benchmarks.md table.

For each collection (cranfield, scifact) it measures, through `Searcher.search` on an index of the
collection: nDCG@10 on the judged queries, and on known items built from the collection itself
(`searcher.search.evaluation.known_items`: a word of one document only plus two common words of it;
a 6–10-word phrase copied from one document) the share whose document comes first and within the
top 3. Rows: dense, keyword, plain RRF (k = 60) of the two, a plain BM25 (bm25s, Lucene's
defaults, its own English stop words and Snowball stemmer, whole documents) and the default.

Cross-validation of the default's constants (the weights of the keyword, exact-phrase and rare-word legs, feedback on or off): the
grid is run on both collections; the variant chosen on one (best nDCG@10 among those whose
known-item shares at rank 1 are at least keyword mode's) is reported on the other, both ways.

    python scripts/bench_known_items.py /work/shared/data/cranfield /work/shared/data/scifact --out docs/benchmarks.md
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchlib import command_line, machine_line, write_section  # noqa: E402

from searcher import Searcher  # noqa: E402
from searcher.search import query as query_module  # noqa: E402
from searcher.search.evaluation import evaluate, known_item_shares, known_items, load_collection, ndcg  # noqa: E402

GRID = [(1.0, 1.0, 0.5, True), (1.0, 1.0, 0.0, True), (1.0, 1.0, 1.0, True), (1.0, 0.0, 0.5, True),
        (1.0, 1.0, 0.5, False)]   # (KEYWORD_WEIGHT, PHRASE_WEIGHT, RARE_WEIGHT, feedback); the dense leg weighs 1.0
SHARES = ("rare@1", "rare@3", "phrase@1", "phrase@3")


def _label(kw: float, phrase: float, rare: float, feedback: bool) -> str:
    return f"zscore, weights keyword {kw} phrase {phrase} rare {rare}, feedback {'on' if feedback else 'off'}"


def plain_bm25(coll) -> float:
    """nDCG@10 of bm25s with Lucene's defaults over whole documents: the plain BM25 bar."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids = [d for d, _ in coll.corpus]
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index(bm25s.tokenize([t for _, t in coll.corpus], stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    out = []
    for qid, text in coll.queries:
        tokens = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)
        docs, scores = retriever.retrieve(tokens, k=10, show_progress=False, n_threads=1)
        out.append(ndcg([ids[i] for i, s in zip(docs[0], scores[0]) if s > 0], coll.qrels[qid], 10))
    return statistics.fmean(out)


def measure(s: Searcher, coll, items, mode: str, **opts) -> dict[str, float]:
    def run(q: str) -> list[str]:
        return [h.id for h in s.search(q, k=100, mode=mode, group_by_file=True, **opts)]
    return {**evaluate(run, coll), **known_item_shares(run, items)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("collections", nargs="+", type=Path, help="collection folders (BEIR layout); two for the cross-validation")
    ap.add_argument("--index-root", type=Path, default=Path("indexes"), help="where eval-<name> indexes live")
    ap.add_argument("--known", type=int, default=60, help="known items of each kind per collection")
    ap.add_argument("--out", type=Path, help="markdown file whose known_items section is replaced")
    ap.add_argument("--save", type=Path, help="also write the measurements to this JSON file")
    ap.add_argument("--load", type=Path, nargs="+", help="write the tables from --save files instead of measuring")
    a = ap.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for saved in a.load or []:
        results |= json.loads(saved.read_text())
    for folder in [] if a.load else a.collections:
        coll = load_collection(folder)
        items = known_items(coll.corpus, a.known)
        s = Searcher(a.index_root / f"eval-{coll.name}")
        s.add([t for _, t in coll.corpus], ids=[d for d, _ in coll.corpus])
        t0 = time.perf_counter()
        rows = results[coll.name] = {"plain BM25 (bm25s)": {"ndcg@10": plain_bm25(coll)}}
        for label, mode, opts in (("dense", "dense", {}), ("keyword", "keyword", {}),
                                  ("plain RRF (k=60)", "hybrid", {"fusion": "rrf", "feedback": False})):
            rows[label] = measure(s, coll, items, mode, **opts)
            print(coll.name, label, {k: round(v, 4) for k, v in rows[label].items()}, flush=True)
        default = query_module.KEYWORD_WEIGHT, query_module.PHRASE_WEIGHT, query_module.RARE_WEIGHT
        for kw, phrase, rare, fb in GRID:
            query_module.KEYWORD_WEIGHT, query_module.PHRASE_WEIGHT, query_module.RARE_WEIGHT = kw, phrase, rare
            rows[_label(kw, phrase, rare, fb)] = r = measure(s, coll, items, "hybrid", feedback=fb)
            print(coll.name, kw, phrase, rare, fb, {k: round(v, 4) for k, v in r.items()}, flush=True)
        query_module.KEYWORD_WEIGHT, query_module.PHRASE_WEIGHT, query_module.RARE_WEIGHT = default
        if a.save:
            a.save.write_text(json.dumps(results, indent=1))
        print(f"{coll.name}: {time.perf_counter() - t0:.0f}s", flush=True)

    def chosen(name: str) -> str:
        rows = results[name]
        ok = [k for k in rows if k.startswith("zscore")
              and all(rows[k][x] >= rows["keyword"][x] for x in ("rare@1", "phrase@1"))]
        return max(ok or [k for k in rows if k.startswith("zscore")], key=lambda k: rows[k]["ndcg@10"])

    names = list(results)
    default_label = _label(query_module.KEYWORD_WEIGHT, query_module.PHRASE_WEIGHT, query_module.RARE_WEIGHT, True)
    lines = ["## Search quality, cross-validated: judged queries and known items", "",
             f"Command: `{command_line('scripts/bench_known_items.py', [*map(str, a.collections), '--out', 'docs/benchmarks.md'])}`  ",
             f"Machine: {machine_line()}. Documents ranked by their best chunk; nDCG@10 on the judged queries; "
             f"known items: {a.known} of each kind per collection (`searcher.search.evaluation.known_items`), "
             "share found at rank 1 / within the top 3. Latency p50 is in-process per judged query on a shared machine.", "",
             "| collection | mode | nDCG@10 | rare-term @1 | @3 | phrase @1 | @3 | p50 ms |", "|---|---|---|---|---|---|---|---|"]
    for name in names:
        for label, r in results[name].items():
            shown = label + (" **default**" if label == default_label else "")
            cells = " | ".join(f"{r[x]:.3f}" if x in r else "" for x in SHARES)
            lines.append(f"| {name} | {shown} | {r['ndcg@10']:.4f} | {cells} | "
                         f"{r['p50_ms']:.1f} |" if "p50_ms" in r else f"| {name} | {shown} | {r['ndcg@10']:.4f} | {cells} | |")
    lines += ["", "Cross-validation: constants chosen on one collection (best nDCG@10 among the variants whose "
              "rank-1 known-item shares are at least keyword mode's), reported on the other.", "",
              "| chosen on | variant | reported on | nDCG@10 there | rare-term @1 | phrase @1 | best plain (BM25, dense, RRF) there |",
              "|---|---|---|---|---|---|---|"]
    for tune, test in [(names[0], names[1]), (names[1], names[0])] if len(names) == 2 else []:
        pick = chosen(tune)
        r = results[test][pick]
        plain = max(results[test][k]["ndcg@10"] for k in ("plain BM25 (bm25s)", "dense", "plain RRF (k=60)"))
        lines.append(f"| {tune} | {pick} | {test} | {r['ndcg@10']:.4f} | {r['rare@1']:.3f} | {r['phrase@1']:.3f} | {plain:.4f} |")
    print("\n".join(lines))
    if a.out:
        write_section(a.out, "known_items", "\n".join(lines))


if __name__ == "__main__":
    main()
