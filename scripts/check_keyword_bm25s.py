"""The keyword leg against bm25s on whole collections: same tokens, same scores, same top 10?

For each index given, bm25s (Lucene's BM25, k1 1.5, b 0.75) is built on exactly the tokens FTS5
holds for every chunk (the fts5vocab instance table), every judged query of the collection is run
through both, and the script counts the queries whose top 10 (and top 100) chunks are identical in
order and reports the largest relative score difference. tests/test_keyword_fusion.py runs the same
check on a small slice.

    python scripts/check_keyword_bm25s.py /work/shared/data/cranfield /work/shared/data/scifact --out docs/benchmarks.md
"""
from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import bm25s
from benchlib import command_line, machine_line, write_section

from searcher import Searcher
from searcher.search.evaluation import load_collection
from searcher.store import keyword
from searcher.store.sqlite import Store


def bm25s_over_fts5_tokens(db: Path) -> tuple[bm25s.BM25, list[int]]:
    """bm25s (Lucene's BM25, k1 1.5, b 0.75) indexed on exactly the tokens FTS5 holds for each chunk,
    and the chunk ids in bm25s's document order (tests/test_keyword_fusion.py uses it too)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, chunks_fts, instance)")
    tokens: dict[int, list[str]] = {}
    for term, doc in conn.execute("SELECT term, doc FROM temp.v ORDER BY doc, offset"):
        tokens.setdefault(doc, []).append(term)
    ids = [r for r, in conn.execute("SELECT rowid FROM chunks_fts ORDER BY rowid")]
    conn.close()
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index([tokens.get(i, []) for i in ids], show_progress=False)
    return retriever, ids


def check(index: Path, folder: Path) -> dict[str, float]:
    coll = load_collection(folder)
    Searcher(index).add([t for _, t in coll.corpus], ids=[d for d, _ in coll.corpus])
    retriever, ids = bm25s_over_fts5_tokens(index / "searcher.db")
    store = Store.open(index / "searcher.db", 384)
    mean_tokens = store.keyword_stats()[1]
    same10 = same100 = 0
    worst = 0.0
    for _, text in coll.queries:
        toks = keyword.query_tokens(text)
        ref = retriever.get_scores([retriever.vocab_dict[t] for t in toks if t in retriever.vocab_dict])
        order = sorted((i for i in range(len(ids)) if ref[i] > 0), key=lambda i: (-ref[i], ids[i]))[:100]
        expected = [(ids[i], float(ref[i])) for i in order]
        ours = store.keyword_search(toks, 100)
        same10 += [c for c, _ in ours[:10]] == [c for c, _ in expected[:10]]
        same100 += [c for c, _ in ours] == [c for c, _ in expected]
        exp = dict(expected)
        worst = max([worst, *(abs(s - exp[c]) / exp[c] for c, s in ours if c in exp)])
    store.close()
    return {"queries": len(coll.queries), "top10": same10, "top100": same100, "worst": worst,
            "chunks": len(ids), "mean_tokens": mean_tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("collections", nargs="+", type=Path, help="collection folders (BEIR layout)")
    ap.add_argument("--index-root", type=Path, default=Path("indexes"), help="where eval-<name> indexes live")
    ap.add_argument("--out", type=Path, help="markdown file whose keyword_bm25s section is replaced")
    a = ap.parse_args()
    lines = ["## The keyword leg against bm25s", "",
             f"Command: `{command_line('scripts/check_keyword_bm25s.py', [*map(str, a.collections), '--out', 'docs/benchmarks.md'])}`  ",
             f"Machine: {machine_line()}. bm25s (Lucene's BM25, k1 1.5, b 0.75) on the tokens FTS5 holds; "
             "every judged query; `--mode keyword` asks for 100 chunks.", "",
             "| collection | chunks | queries | top 10 identical | top 100 identical | largest relative score difference |",
             "|---|---|---|---|---|---|"]
    for folder in a.collections:
        t0 = time.perf_counter()
        r = check(a.index_root / f"eval-{folder.name}", folder)
        print(folder.name, r, f"{time.perf_counter() - t0:.0f}s", flush=True)
        lines.append(f"| {folder.name} | {r['chunks']} | {r['queries']} | {r['top10']} | {r['top100']} | {r['worst']:.1e} |")
    lines += ["", "Scores differ only by bm25s's float32. Below the top 10 the order can differ: FTS5's own bm25() "
              "picks the 100 candidates that are scored again, and a chunk it ranks lower is not among them."]
    if a.out:
        write_section(a.out, "keyword_bm25s", "\n".join(lines))


if __name__ == "__main__":
    main()
