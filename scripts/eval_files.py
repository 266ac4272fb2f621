"""Retrieval quality of ``searcher`` on a test collection, measured the way a user runs it.

Why this exists: the numbers that matter are those of the real path — documents as files in a
folder, ``Searcher.index(folder)``, then ``Searcher.search(query)`` returning chunks — not of an
idealised embedding experiment. This script writes a collection's documents as files, indexes
them (incrementally: an existing index is brought up to date, so a second run is quick), runs
every query, maps chunk hits back to documents and prints nDCG@10, Recall@100 and MRR@10.

    python scripts/eval_files.py /work/shared/data/cranfield [--index DIR] [--k 10] [--json]
                                 [--out docs/benchmarks.md]

A document's rank is that of its best chunk (hits come best first, so the first occurrence of a
document is its best chunk). Queries are searched with ``k=100`` chunks by default (``--depth``),
so fewer than 100 distinct documents may come back when documents have several chunks.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if importlib.util.find_spec("searcher") is None:   # not installed: use this checkout's package
    sys.path.append(str(Path(__file__).resolve().parent.parent))


from benchlib import (  # noqa: E402
    code_version,
    command_line,
    default_docs_folder,
    doc_id_from_path,
    machine_line,
    write_documents,
    write_section,
)

from searcher.search.evaluation import load_collection, mrr, ndcg, recall  # noqa: E402


def rank_documents(hits: list[Any]) -> list[str]:
    """Chunk hits (best first) -> document ids in order of their best chunk, each once."""
    seen: dict[str, None] = {}
    for h in hits:
        doc = doc_id_from_path(h.path) if h.path else h.id
        seen.setdefault(doc, None)
    return list(seen)


def search_mode(searcher_cls: Any, mode: str | None) -> str:
    """The search mode used: the one asked for, else the default of this version's ``search()``."""
    if mode:
        return mode
    param = inspect.signature(searcher_cls.search).parameters.get("mode")
    if param is None:
        return "dense (this version has no search modes)"
    return f"{param.default} (the default)"


def evaluate(collection_dir: str, index_dir: Path, docs_dir: Path | None, k: int, recall_k: int,
             depth: int, model: str | None, mode: str | None = None) -> dict[str, Any]:
    from searcher import Searcher

    col = load_collection(collection_dir)
    folder = docs_dir or default_docs_folder(col)
    written = write_documents(col, folder)

    searcher = Searcher(index_dir, model=model)
    t0 = time.perf_counter()
    report = searcher.index(folder)
    index_seconds = time.perf_counter() - t0
    summary = report.summary()

    per_query: dict[str, dict[str, float]] = {}
    n_docs_returned = 0
    t0 = time.perf_counter()
    for qid, text in col.queries:   # only queries with a relevant document (trec_eval skips the others)
        judged = col.qrels[qid]
        hits = searcher.search(text, k=depth, mode=mode) if mode else searcher.search(text, k=depth)
        ranking = rank_documents(hits)
        n_docs_returned += len(ranking)
        per_query[qid] = {"ndcg": ndcg(ranking, judged, k), "recall": recall(ranking, judged, recall_k),
                          "mrr": mrr(ranking, judged, k)}
    search_seconds = time.perf_counter() - t0
    info = searcher.info()
    searcher.close()

    n = len(per_query)
    mean = {m: (sum(q[m] for q in per_query.values()) / n if n else 0.0) for m in ("ndcg", "recall", "mrr")}
    return {
        "collection": col.name, "queries": n, "documents": len(written),
        f"ndcg@{k}": mean["ndcg"], f"recall@{recall_k}": mean["recall"], f"mrr@{k}": mean["mrr"],
        "search_depth_chunks": depth, "search_mode": search_mode(Searcher, mode),
        "mean_docs_per_query": n_docs_returned / n if n else 0.0,
        "chunks": info["chunks"], "model": info["model"]["name"],
        "chunking": info["chunking"], "index": str(index_dir), "docs_folder": str(folder),
        "index_run": {**summary, "wall_seconds": round(index_seconds, 3)},
        "search_seconds": round(search_seconds, 3),
        "per_query": per_query,
    }


def markdown(res: dict[str, Any], k: int, recall_k: int, command: str) -> str:
    run = res["index_run"]
    return "\n".join([
        f"## Retrieval quality: {res['collection']} (documents as files)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine_line()}; code: {code_version(Path(__file__).resolve().parent.parent)}.",
        "",
        f"{res['documents']} documents written as `<id>.txt` (title, blank line, text), indexed with "
        f"`Searcher.index(folder)` into {res['chunks']} chunks ({res['model']}, ≤ "
        f"{res['chunking']['max_tokens']} tokens, {res['chunking']['overlap_tokens']} overlap); each query "
        f"searched with `search(q, k={res['search_depth_chunks']})` chunks, search mode "
        f"{res['search_mode']}, a document ranked by its best chunk "
        f"({res['mean_docs_per_query']:.1f} distinct documents per query on average). Graded nDCG as "
        f"trec_eval `ndcg_cut` (linear gain), mean over the {res['queries']} queries.",
        "",
        f"| nDCG@{k} | Recall@{recall_k} | MRR@{k} | queries |",
        "|---|---|---|---|",
        f"| {res[f'ndcg@{k}']:.4f} | {res[f'recall@{recall_k}']:.4f} | {res[f'mrr@{k}']:.4f} | {res['queries']} |",
        "",
        f"Index run for this evaluation: {run['added']} added, {run['updated']} updated, {run['unchanged']} "
        f"unchanged, {run['chunks_embedded']} chunks embedded, {run['wall_seconds']:.1f}s; "
        f"{res['queries']} queries in {res['search_seconds']:.1f}s.",
    ])


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("collection", help="collection folder (corpus.jsonl.gz, queries.jsonl.gz, qrels.tsv)")
    p.add_argument("--index", type=Path, help="index folder (default: a folder in the temp dir, reused)")
    p.add_argument("--docs", type=Path, help="where to write the documents as files (default: a stable "
                   "folder in the temp dir)")
    p.add_argument("--k", type=int, default=10, help="cut-off for nDCG and MRR (default 10)")
    p.add_argument("--recall-k", type=int, default=100, help="cut-off for recall (default 100)")
    p.add_argument("--depth", type=int, default=100, help="chunks asked of search() per query (default 100)")
    p.add_argument("--mode", help="search mode passed to search() (e.g. dense, keyword, hybrid; default: "
                   "search()'s own default)")
    p.add_argument("--model", help="model for a new index (default: searcher's default)")
    p.add_argument("--json", action="store_true", help="print one JSON object (per-query scores included)")
    p.add_argument("--out", type=Path, help="write a section into this markdown file (e.g. docs/benchmarks.md)")
    a = p.parse_args(argv)

    name = Path(a.collection).resolve().name
    index_dir = a.index or Path(tempfile.gettempdir()) / f"searcher-eval-{name}-index"
    res = evaluate(a.collection, index_dir.resolve(), a.docs, a.k, a.recall_k, a.depth, a.model, a.mode)
    command = command_line("scripts/eval_files.py", argv if argv is not None else sys.argv[1:])
    if a.json:
        print(json.dumps(res))
    else:
        run = res["index_run"]
        print(f"{res['collection']}: {res['documents']} documents, {res['chunks']} chunks; index run "
              f"{run['added']} added / {run['unchanged']} unchanged, {run['chunks_embedded']} embedded, "
              f"{run['wall_seconds']:.1f}s")
        print(f"nDCG@{a.k:<6} {res[f'ndcg@{a.k}']:.4f}")
        print(f"Recall@{a.recall_k:<4} {res[f'recall@{a.recall_k}']:.4f}")
        print(f"MRR@{a.k:<7} {res[f'mrr@{a.k}']:.4f}")
        print(f"queries    {res['queries']}")
        print(f"mode       {res['search_mode']}")
    if a.out:
        write_section(a.out, "eval_files", markdown(res, a.k, a.recall_k, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
