"""Indexing and query speed of ``searcher``, against a bare sentence-transformers baseline.

Why this exists: embedding dominates indexing, so the honest question is how close our whole
pipeline (walk, read, chunk, embed, SQLite, FAISS) comes to simply encoding the same chunk texts
with sentence-transformers; and whether the incremental path and queries are as cheap as promised.
One run measures, on the same corpus files:

(a) ours: ``Searcher(fresh_index, precision="float32").index(folder)`` in a fresh subprocess;
(b) bare: ``SentenceTransformer(path).encode(chunks, batch_size=32, normalize_embeddings=True)`` in a
    fresh subprocess, over exactly the chunk texts (a) stored (``chunks.text`` in the index's SQLite);
    both arms are timed inside the child from before their first heavy import (torch comes in
    through it) to the end of the work, so model load is included, measured the same way in both
    arms; arms alternate A B A B ... and medians are reported. chunks/s = stored chunks / seconds;
(c) a no-change re-index with the ``searcher index`` CLI (what a user runs), wall time of the
    subprocess, against (a)'s median;
(e) encoder efficiency: the encoder's FLOPs for the tokens it actually read (per layer: Q/K/V and
    output projections 8·L·H², attention scores and their weighted sum 4·L²·H, feed-forward 4·L·H·I,
    for each chunk's L tokens, specials included, no padding) divided by the seconds spent in
    ``encode``, against this machine's float32 matrix-multiply FLOP/s measured in a child of the same
    run (the best of torch, numpy and ONNX Runtime, 2048², median of 5); with ``--int8`` a third arm Q indexes with
    ``precision="int8"`` (int8 arithmetic: its FLOP/s are compared with the float32 peak as well);
(d) query latency: in-process ``Searcher.search(q, k=10)`` over the collection's queries after one
    warm-up (query embedding included), p50/p95 (median over ``--query-passes`` passes, because a
    busy machine makes single queries very noisy); and cold ``searcher search`` CLI wall time,
    median of 3.

    python scripts/bench_index.py /work/shared/data/cranfield [--runs 3] [--int8] [--out docs/benchmarks.md]

The machine may be shared: compare the arms by their ratio (measured in the same run), not by
absolute times; the load average before and after is reported.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sqlite3
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


import benchlib  # noqa: E402

from searcher.search.evaluation import load_collection, percentile  # noqa: E402


# ---- the two arms, each run as a child process ------------------------------------------------------
def child_ours(folder: str, index: str, precision: str = "float32") -> dict[str, Any]:
    """Arm A: index ``folder`` into the fresh index ``index``; timed from before ``import searcher``.

    The encoder's methods are wrapped with timers (no behaviour change) to show where time goes."""
    t0, c0 = time.perf_counter(), time.process_time()
    from searcher import embedding

    spent: dict[str, float] = {"load": 0.0, "fingerprint": 0.0, "token_spans": 0.0, "encode": 0.0}
    calls: dict[str, int] = {k: 0 for k in spent}

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t
                calls[name] += 1
        return wrapper

    enc = embedding.Encoder
    enc.__init__ = timed("load", enc.__init__)
    enc._weights_digest = timed("fingerprint", enc._weights_digest)
    enc.token_spans = timed("token_spans", enc.token_spans)
    enc.encode = timed("encode", enc.encode)
    from searcher import Searcher

    report = Searcher(index, precision=precision).index(folder)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "embedded": report.embedded, "added": report.count("added"),
            "report_seconds": report.seconds, "spent": spent, "calls": calls}


def child_bare(chunks_file: str, model_path: str) -> dict[str, Any]:
    """Arm B: encode the stored chunk texts; timed from before ``import sentence_transformers``."""
    texts = json.loads(Path(chunks_file).read_text(encoding="utf-8"))
    t0, c0 = time.perf_counter(), time.process_time()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path)
    t1 = time.perf_counter()
    vecs = model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    t2, cpu = time.perf_counter(), time.process_time() - c0
    assert len(vecs) == len(texts)
    return {"seconds": t2 - t0, "cpu_seconds": cpu, "load": t1 - t0, "encode": t2 - t1, "device": str(model.device)}


def child_matmul() -> dict[str, Any]:
    """This machine's float32 matrix-multiply FLOP/s now: torch (its default threads), numpy and
    ONNX Runtime (the indexing encoder's library, as many threads as torch), a 2048² product,
    median of 5 after a warm-up."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    n = 2048
    flops = 2.0 * n ** 3
    out: dict[str, Any] = {"n": n, "torch_threads": torch.get_num_threads()}
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    io = [onnx.helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, [n, n]) for x in "abc"]
    graph = onnx.helper.make_graph([onnx.helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", io[:2], io[2:])
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(onnx.helper.make_model(graph).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    for name, mul in (("torch", lambda: torch.mm(ta, tb)), ("numpy", lambda: a @ b),
                      ("onnxruntime", lambda: session.run(None, {"a": a, "b": b}))):
        mul()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            mul()
            times.append(time.perf_counter() - t)
        out[f"{name}_flops"] = flops / statistics.median(times)
    return out


def encoder_flops(model_path: str, tokens: list[int]) -> float:
    """Forward-pass FLOPs of a BERT-style encoder over sequences of these lengths (no padding)."""
    cfg = json.loads((Path(model_path) / "config.json").read_text(encoding="utf-8"))
    h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return float(sum(n * (8 * L * h * h + 4 * L * L * h + 4 * L * h * i) for L in tokens))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"   # searcher sets this itself; the same for both arms
    return env


def _run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                         env=_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _searcher_cli() -> list[str]:
    exe = Path(sys.executable).parent / "searcher"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("searcher")
    return [found] if found else [sys.executable, "-m", "searcher"]


def _timed_cli(args: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(_searcher_cli() + args, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"searcher {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return wall, out.stdout


def _stored_chunks(index: Path) -> list[tuple[str, int]]:
    """(text, content tokens) of every stored chunk, in id order."""
    con = sqlite3.connect(f"file:{index / 'searcher.db'}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in con.execute("SELECT text, n_tokens FROM chunks ORDER BY id")]
    finally:
        con.close()


# ---- the benchmark ---------------------------------------------------------------------------------
def bench(collection_dir: str, runs: int, work: Path, queries_limit: int | None,
          query_passes: int, int8: bool) -> dict[str, Any]:
    c = benchlib
    col = load_collection(collection_dir)
    folder = c.default_docs_folder(col)
    docs = c.write_documents(col, folder)
    from searcher.embed.encoder import DEFAULT_MODEL, resolve_model  # numpy only; no torch in this process yet
    model_path = resolve_model(DEFAULT_MODEL)

    load_before = os.getloadavg()
    ours: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    quant: list[dict[str, Any]] = []
    matmul: list[dict[str, Any]] = []
    reindex: list[float] = []
    reindex_reported: list[float] = []
    chunks: list[str] = []
    chunks_file = work / "chunks.json"
    digest = ""
    last_index: Path | None = None
    for i in range(runs):
        index = work / f"index-{i}"
        shutil.rmtree(index, ignore_errors=True)
        # A: our pipeline into a fresh index
        a = _run_child("ours", str(folder), str(index), "float32")
        stored = _stored_chunks(index)
        d = hashlib.sha256("\x00".join(t for t, _ in stored).encode()).hexdigest()
        if i == 0:
            chunks, digest = [t for t, _ in stored], d
            # tokens the encoders read, [CLS] and [SEP] included: bare encodes every chunk, ours
            # every distinct text once
            tokens_all = [n + 2 for _, n in stored]
            tokens = [n + 2 for n in dict(stored).values()]
            chunks_file.write_text(json.dumps(chunks), encoding="utf-8")
        elif d != digest:
            raise RuntimeError(f"run {i}: the index stored different chunks than run 0")
        ours.append(a)
        print(f"run {i + 1}/{runs} A ours: {a['seconds']:.1f}s ({len(chunks) / a['seconds']:.1f} chunks/s)",
              file=sys.stderr, flush=True)
        # (c) no-change re-index with the CLI
        wall, out = _timed_cli(["index", str(folder), "--index", str(index)])
        m = re.search(r"(\d+) added, (\d+) updated, (\d+) unchanged, (\d+) removed.*?embedded in ([\d.]+)s", out)
        if not m or m.group(1, 2, 4) != ("0", "0", "0") or int(m.group(3)) != len(docs):
            raise RuntimeError(f"re-index of an unchanged folder did work: {out.strip()}")
        reindex.append(wall)
        reindex_reported.append(float(m.group(5)))
        print(f"run {i + 1}/{runs} C re-index: {wall:.2f}s", file=sys.stderr, flush=True)
        # B: bare sentence-transformers over the same chunk texts
        b = _run_child("bare", str(chunks_file), model_path)
        bare.append(b)
        print(f"run {i + 1}/{runs} B bare: {b['seconds']:.1f}s ({len(chunks) / b['seconds']:.1f} chunks/s)",
              file=sys.stderr, flush=True)
        if int8:
            q_index = work / f"index-int8-{i}"
            q = _run_child("ours", str(folder), str(q_index), "int8")
            shutil.rmtree(q_index, ignore_errors=True)
            quant.append(q)
            print(f"run {i + 1}/{runs} Q ours int8: {q['seconds']:.1f}s ({len(chunks) / q['seconds']:.1f} chunks/s)",
                  file=sys.stderr, flush=True)
        matmul.append(_run_child("matmul"))
        print(f"run {i + 1}/{runs} M matmul: {matmul[-1]['torch_flops'] / 1e9:.1f} GFLOP/s torch",
              file=sys.stderr, flush=True)
        if last_index is not None:
            shutil.rmtree(last_index, ignore_errors=True)
        last_index = index

    # (d) queries: in-process, then cold CLI
    import inspect

    from searcher import Searcher

    mode = inspect.signature(Searcher.search).parameters.get("mode")
    mode_name = f"{mode.default} (the default)" if mode is not None else "dense (this version has no modes)"

    queries = [t for _, t in col.queries][:queries_limit] if queries_limit else [t for _, t in col.queries]
    s = Searcher(last_index)
    s.search(queries[0], k=10)   # warm-up: loads the model, the vectors and the store
    passes: list[list[float]] = []
    for _ in range(query_passes):
        latencies = []
        for q in queries:
            t = time.perf_counter()
            s.search(q, k=10)
            latencies.append(time.perf_counter() - t)
        passes.append(latencies)
    s.close()
    cold = [_timed_cli(["search", queries[0], "--index", str(last_index), "-k", "10"])[0] for _ in range(3)]
    load_after = os.getloadavg()
    shutil.rmtree(last_index, ignore_errors=True)

    n = len(chunks)
    med = statistics.median
    ours_s, bare_s = med([r["seconds"] for r in ours]), med([r["seconds"] for r in bare])
    flops, flops_all = encoder_flops(model_path, tokens), encoder_flops(model_path, tokens_all)
    peak = med([max(m["torch_flops"], m["numpy_flops"], m["onnxruntime_flops"]) for m in matmul])
    eff = {"ours": med([flops / r["spent"]["encode"] for r in ours]),
           "bare": med([flops_all / r["encode"] for r in bare])}
    if quant:
        eff["int8"] = med([flops / r["spent"]["encode"] for r in quant])
    return {
        "encoder_gflop": flops / 1e9, "encoder_tokens": sum(tokens), "matmul": matmul, "matmul_flops": peak,
        "encoder_flops_per_s": eff, "encoder_efficiency": {k: v / peak for k, v in eff.items()},
        "quant": quant,
        "quant_seconds": med([r["seconds"] for r in quant]) if quant else None,
        "quant_ratio_per_run": [b["seconds"] / q["seconds"] for q, b in zip(quant, bare)],
        "collection": col.name, "documents": len(docs), "chunks": n, "distinct_chunk_texts": len(set(chunks)),
        "chunk_chars": sum(map(len, chunks)), "runs": runs, "model_path": model_path,
        "ours": ours, "bare": bare,
        "ours_seconds": ours_s, "bare_seconds": bare_s,
        "ours_chunks_per_s": n / ours_s, "bare_chunks_per_s": n / bare_s,
        "ratio_ours_over_bare": (n / ours_s) / (n / bare_s),
        "ratio_per_run": [b["seconds"] / a["seconds"] for a, b in zip(ours, bare)],
        "ratio_median_of_pairs": med([b["seconds"] / a["seconds"] for a, b in zip(ours, bare)]),
        "ours_cpu_seconds": med([r["cpu_seconds"] for r in ours]),
        "bare_cpu_seconds": med([r["cpu_seconds"] for r in bare]),
        "cpu_ratio_ours_over_bare": med([r["cpu_seconds"] for r in bare]) / med([r["cpu_seconds"] for r in ours]),
        "ours_other_seconds": med([r["seconds"] - sum(r["spent"].values()) for r in ours]),
        "bare_load_seconds": med([r["load"] for r in bare]), "bare_encode_seconds": med([r["encode"] for r in bare]),
        "ours_spent": {k: med([r["spent"][k] for r in ours]) for k in ours[0]["spent"]},
        "ours_calls": ours[0]["calls"],
        "reindex_seconds": reindex, "reindex_median": med(reindex),
        "reindex_reported_seconds": reindex_reported,
        "reindex_pct_of_first": 100 * med(reindex) / ours_s,
        "queries": len(queries), "search_mode": mode_name,
        "query_passes": query_passes,
        "query_p50_ms_per_pass": [1000 * percentile(p, 0.5) for p in passes],
        "query_p95_ms_per_pass": [1000 * percentile(p, 0.95) for p in passes],
        "query_p50_ms": med([1000 * percentile(p, 0.5) for p in passes]),
        "query_p95_ms": med([1000 * percentile(p, 0.95) for p in passes]),
        "cold_cli_search_seconds": cold, "cold_cli_search_median": med(cold),
        "loadavg_before": load_before, "loadavg_after": load_after,
    }


def markdown(r: dict[str, Any], command: str) -> str:
    c = benchlib
    n = r["chunks"]
    sp = r["ours_spent"]
    other = r["ours_other_seconds"]
    runs_a = ", ".join(f"{x['seconds']:.1f}" for x in r["ours"])
    runs_b = ", ".join(f"{x['seconds']:.1f}" for x in r["bare"])
    ok = lambda cond: "yes" if cond else "**no**"  # noqa: E731

    def gflops(key: str) -> str:
        return ", ".join(f"{m[key] / 1e9:.1f}" for m in r["matmul"])
    return "\n".join([
        f"## Indexing and query speed: {r['collection']}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {c.machine_line()}; code: {c.code_version(ROOT)}. Load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.2f}' for x in r['loadavg_before'])}, after "
        f"{'/'.join(f'{x:.2f}' for x in r['loadavg_after'])} (the machine is shared; compare ratios).",
        "",
        f"{r['documents']} documents as files → {n} chunks ({r['distinct_chunk_texts']} distinct texts, "
        f"{r['chunk_chars']:,} characters). Arms alternate A B{' Q' if r['quant'] else ''} M × {r['runs']}, medians shown. Both arms run in a "
        "fresh subprocess and are timed inside it from before their first heavy import (`import searcher` / "
        "`import sentence_transformers`) to the end of the work: **model load is included in both**. "
        "chunks/s = stored chunks ÷ seconds.",
        "",
        "| measure | value | goal |",
        "|---|---|---|",
        f"| A ours: `Searcher(fresh, precision=\"float32\").index(folder)` | {r['ours_seconds']:.1f} s → **{r['ours_chunks_per_s']:.1f} "
        f"chunks/s** (runs: {runs_a} s) | |",
        f"| B bare: `SentenceTransformer(path).encode(chunks, batch_size=32, normalize_embeddings=True)` | "
        f"{r['bare_seconds']:.1f} s → **{r['bare_chunks_per_s']:.1f} chunks/s** (runs: {runs_b} s; load "
        f"{r['bare_load_seconds']:.1f} s + encode {r['bare_encode_seconds']:.1f} s) | |",
        f"| ratio ours / bare (chunks/s), median of the A B pairs | **{r['ratio_median_of_pairs']:.3f}** (per "
        f"pair: {', '.join(f'{x:.3f}' for x in r['ratio_per_run'])}; from the medians above "
        f"{r['ratio_ours_over_bare']:.3f}) | ≥ 1.0: {ok(r['ratio_median_of_pairs'] >= 1.0)} |",
        *([f"| Q ours with `precision=\"int8\"`, ratio to B per pair | {r['quant_seconds']:.1f} s → "
           f"**{n / r['quant_seconds']:.1f} chunks/s**, **{statistics.median(r['quant_ratio_per_run']):.2f}×** bare "
           f"(per pair: {', '.join(f'{x:.2f}' for x in r['quant_ratio_per_run'])}) | |"] if r["quant"] else []),
        f"| float32 matrix multiply on this machine (2048², median of 5, per run; best of torch/numpy/ONNX Runtime) | "
        f"**{r['matmul_flops'] / 1e9:.1f} GFLOP/s** (torch "
        f"{gflops('torch_flops')}; numpy {gflops('numpy_flops')}; ONNX Runtime {gflops('onnxruntime_flops')}; threads "
        f"{r['matmul'][0]['torch_threads']}) | |",
        f"| encoder efficiency = encoder FLOP/s ÷ matmul FLOP/s ({r['encoder_gflop']:.0f} GFLOP for "
        f"{r['encoder_tokens']:,} tokens, ÷ seconds in `encode`) | "
        + "; ".join(f"{k} **{r['encoder_efficiency'][k]:.2f}** ({v / 1e9:.1f} GFLOP/s)"
                    for k, v in r["encoder_flops_per_s"].items()) + " | |",
        f"| same ratio by CPU time of the child (user + system, all threads) | {r['cpu_ratio_ours_over_bare']:.3f} "
        f"(A {r['ours_cpu_seconds']:.1f} s, B {r['bare_cpu_seconds']:.1f} s CPU) | |",
        f"| no-change re-index, `searcher index` CLI wall | **{r['reindex_median']:.2f} s** = "
        f"{r['reindex_pct_of_first']:.2f}% of A (runs: {', '.join(f'{x:.2f}' for x in r['reindex_seconds'])} s; "
        f"the CLI reports {statistics.median(r['reindex_reported_seconds']):.2f} s inside `index()`) | < 2%: "
        f"{ok(r['reindex_pct_of_first'] < 2)} |",
        f"| query latency, in-process `search(q, k=10)`, mode {r['search_mode']}, {r['queries']} queries after 1 warm-up, "
        f"median of {r['query_passes']} passes | p50 **{r['query_p50_ms']:.1f} ms**, p95 **{r['query_p95_ms']:.1f} ms** "
        f"(per pass p50 {', '.join(f'{x:.1f}' for x in r['query_p50_ms_per_pass'])}; p95 "
        f"{', '.join(f'{x:.1f}' for x in r['query_p95_ms_per_pass'])} ms) | |",
        f"| cold `searcher search` CLI wall, median of 3 | **{r['cold_cli_search_median']:.2f} s** (runs: "
        f"{', '.join(f'{x:.2f}' for x in r['cold_cli_search_seconds'])} s) | |",
        "",
        f"Where A's time goes (medians, by timers wrapped around the encoder's methods): model load "
        f"{sp['load']:.1f} s, weights fingerprint {sp['fingerprint']:.1f} s, tokenizing for chunking (in the reader thread, "
        f"overlapping the encoder) {sp['token_spans']:.1f} s (`token_spans` called {r['ours_calls']['token_spans']}×), encoding {sp['encode']:.1f} s "
        f"(`encode` called {r['ours_calls']['encode']}×), everything else (imports, walk, read, SQLite, FAISS) "
        f"{other:.1f} s (per-run remainders, median). The components are medians taken separately, so they need "
        "not add up to A's median exactly.",
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        kind, *args = argv[1:]
        result = {"ours": child_ours, "bare": child_bare, "matmul": child_matmul}[kind](*args)
        print(json.dumps(result))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("collection", help="collection folder (corpus.jsonl.gz, queries.jsonl.gz, qrels.tsv)")
    p.add_argument("--runs", type=int, default=3, help="A/B repetitions (default 3)")
    p.add_argument("--queries", type=int, help="use only the first N queries for latency (default: all)")
    p.add_argument("--query-passes", type=int, default=3, help="passes over the queries for latency (default 3)")
    p.add_argument("--int8", action="store_true", help="add arm Q: ours with the int8 encoder (precision='int8')")
    p.add_argument("--json", action="store_true", help="print the raw results as one JSON object")
    p.add_argument("--out", type=Path, help="write a section into this markdown file (e.g. docs/benchmarks.md)")
    a = p.parse_args(argv)
    if a.runs < 1:
        p.error("--runs must be at least 1")
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        res = bench(a.collection, a.runs, Path(tmp), a.queries, max(1, a.query_passes), a.int8)
    command = benchlib.command_line("scripts/bench_index.py", argv)
    md = markdown(res, command)
    print(json.dumps(res) if a.json else md)
    if a.out:
        benchlib.write_section(a.out, "bench_index", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
