"""Retrieval quality of every search mode on the shared test collections, as a docs/benchmarks.md table.

Runs `Searcher.evaluate` (what `searcher eval` runs) per collection: dense, keyword and hybrid with
the default fusion, plus hybrid variants (RRF, no feedback) that justify the default. Indexes are
built once per collection under --index-root and reused (indexing is incremental).

    python scripts/bench_quality.py /work/shared/data/cranfield /work/shared/data/scifact --out docs/benchmarks.md
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchlib import machine_line, write_section  # noqa: E402

from searcher import Searcher  # noqa: E402

VARIANTS = [("dense", {}), ("keyword", {}), ("hybrid", {}),
            ("hybrid", {"fusion": "rrf"}), ("hybrid", {"feedback": False}),
            ("hybrid", {"fusion": "rrf", "feedback": False})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("collections", nargs="+", type=Path)
    ap.add_argument("--index-root", type=Path, default=Path("indexes"), help="where eval-<name> indexes live")
    ap.add_argument("--out", type=Path, help="markdown file whose quality section is replaced")
    a = ap.parse_args()
    rows = []
    for coll in a.collections:
        s = Searcher(a.index_root / f"eval-{coll.name}")
        t0 = time.perf_counter()
        for mode, opts in VARIANTS:
            r = s.evaluate(coll, (mode,), **opts)[mode]
            label = mode + ("" if not opts else " (" + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")")
            if mode == "hybrid" and not opts:
                label += " **default**"
            rows.append((coll.name, label, r))
            print(coll.name, label, {k: round(v, 4) for k, v in r.items()}, flush=True)
        print(f"{coll.name}: {time.perf_counter() - t0:.0f}s", flush=True)
    lines = ["## Retrieval quality: `searcher eval`", "",
             f"Command: `python scripts/bench_quality.py {' '.join(str(c) for c in a.collections)} --out docs/benchmarks.md`  ",
             f"Machine: {machine_line()}. Model all-MiniLM-L6-v2 (packaged), chunks ≤ 254 tokens with 32 overlap; documents ranked by their best "
             "chunk, 100 deep. Metrics as trec_eval (checked against pytrec_eval in tests/test_evaluation.py). "
             "Latency is in-process per query including the query embedding, on a shared machine.", "",
             "| collection | mode | nDCG@10 | Recall@100 | MRR@10 | p50 ms | p95 ms |", "|---|---|---|---|---|---|---|"]
    for name, label, r in rows:
        lines.append(f"| {name} | {label} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mrr@10']:.4f} | "
                     f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    lines += ["", "Reference points (README of the collections, plain tools): cranfield BM25 0.374, dense 0.382, "
              "RRF 0.421; scifact BM25 0.686, dense 0.645, RRF 0.718."]
    if a.out:
        write_section(a.out, "bench_quality", "\n".join(lines))


if __name__ == "__main__":
    main()
