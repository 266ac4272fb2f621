"""Vector search at 10k, 100k and 1M chunks: the structure ``searcher`` picks by default against exact search.

Why this exists: the issue asks for warm search p50 ≤ 5 ms (embedding excluded) at a million chunks
with recall@10 ≥ 0.95 against exact search, and for the cost of getting there. For each size this
builds, through ``searcher.store.faiss_index.VectorIndex`` (the code an index run uses), the default choice
(``choose(n)`` with the default memory budget) and the exact flat index as the baseline, and measures:

- build: training + adding all vectors + calibration (the recall measurement that picks efSearch /
  nprobe), in seconds;
- search p50/p95: ``VectorIndex.search(q, k=10)`` one query at a time, query embedding excluded;
- recall@10 against exact float32 search, for real query embeddings (the judged queries of scifact and
  cranfield, encoded with the packaged model) — not the stored vectors the calibration uses;
- bytes per chunk on disk (the saved .faiss file) and in RAM: a fresh process loads the saved index
  (memory-mapped, as ``searcher search`` does) and answers every query; its RSS growth (private +
  mapped file pages) divided by the chunk count.

Vectors: 100k real ones, the distinct chunk vectors of an index built from
``benchlib.scale_texts(100_000)`` (``--real-index``; built here when absent, ~30 min); the 10k point
uses the first 10k of them (in SQLite key order, i.e. random). The 1M point adds 900k synthetic
vectors: each is normalise(w·a + (1−w)·b + e) with a, b two random real vectors, w uniform in
[0.5, 1] and e Gaussian noise of norm ≈ 0.3 (σ = 0.3/√384 per dimension). A "100k synthetic" row
measures the default structure on 100k of those alone, to show whether they are easier than real ones.

    python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--real-index /work/cache/idx100k]

With ``--dtype-quality`` it instead measures what storing vectors as float16 or int8 costs in search
quality (section ``bench_scale_dtype``): nDCG@10 with ``Searcher.evaluate`` (what ``searcher eval``
runs) on cranfield and scifact. The float32 eval index (``indexes/eval-<name>``, built when absent)
is copied and its stored vectors re-encoded with ``searcher.store.encode_vector`` — exactly what an
index made with ``--vector-dtype`` stores — so the three runs search the same chunks; the vector
structure is then rebuilt in that dtype by the first run.

Times are medians on a possibly shared machine; the load average is printed with the results.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("searcher") is None:   # not installed: use this checkout's package
    sys.path.append(str(ROOT))

import benchlib  # noqa: E402

from searcher.indexing import PROBES, query_like  # noqa: E402
from searcher.search.evaluation import load_collection, percentile  # noqa: E402
from searcher.store.ann import AnnSettings, AnnSpec, choose  # noqa: E402
from searcher.store.faiss_index import VectorIndex  # noqa: E402
from searcher.store.sqlite import Store  # noqa: E402

DATA = Path("/work/shared/data")
SECTION = "bench_scale"
FLAT_QUERIES = 100         # queries timed for the exact baseline


def real_vectors(index: Path) -> np.ndarray:
    """The distinct chunk vectors of a searcher index (read-only), building the index when absent."""
    db = index / "searcher.db"
    if not db.exists():
        from searcher import Searcher

        texts = benchlib.scale_texts(100_000)
        s = Searcher(index)
        for i in range(0, len(texts), 5000):
            s.add(texts[i:i + 5000], ids=[f"s{j}" for j in range(i, i + len(texts[i:i + 5000]))])
            print(f"  built {i + 5000} of {len(texts)}", file=sys.stderr, flush=True)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        blobs = [b for (b,) in c.execute("SELECT vector FROM embeddings")]
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()


def synthetic(real: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((count, real.shape[1]), np.float32)
    for a in range(0, count, 100_000):
        m = min(100_000, count - a)
        w = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        x = w * real[rng.integers(0, len(real), m)] + (1 - w) * real[rng.integers(0, len(real), m)]
        x += rng.standard_normal(x.shape).astype(np.float32) * np.float32(0.3 / np.sqrt(real.shape[1]))
        out[a:a + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def query_vectors() -> np.ndarray:
    from searcher.embed.encoder import load_encoder

    texts = [t for name in ("scifact", "cranfield") for _, t in load_collection(DATA / name).queries]
    return load_encoder().encode(texts)


def calibration_queries(index: Path, dim: int) -> np.ndarray:
    """What an index run calibrates with (``Writer.calibration_queries``): query-like runs of words
    from chunks spread over the real index, embedded with its model."""
    from searcher.embed.encoder import load_encoder

    store = Store.open(index / "searcher.db", dim)
    try:
        return load_encoder().encode(query_like(store.spread_texts(PROBES)))
    finally:
        store.conn.close()


def exact_top10(x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    best = []
    for a in range(0, len(queries), 64):
        s = queries[a:a + 64] @ x.T
        top = np.argpartition(-s, 10, axis=1)[:, :10]
        best.append(top)
    return np.vstack(best)


def measure(x: np.ndarray, spec: AnnSpec, queries: np.ndarray, truth: np.ndarray, probes: np.ndarray,
            folder: Path) -> dict:
    ids = np.arange(len(x), dtype=np.int64)

    def batches():
        for a in range(0, len(x), 8192):
            yield ids[a:a + 8192], x[a:a + 8192]
    v = VectorIndex(x.shape[1])
    t = time.perf_counter()
    v.rebuild(spec, batches, len(x), lambda: probes)
    build = time.perf_counter() - t
    if spec.kind == "flat":   # exact: recall 1 by definition, and each query scans everything
        queries, truth = queries[:FLAT_QUERIES], truth[:FLAT_QUERIES]
    chosen = v.state.search_param
    sweep = {}
    for param in [p for p in (chosen // 4, chosen // 2, chosen * 2) if p] if chosen else []:
        v.state = replace(v.state, search_param=param)
        sweep[param] = run_queries(v, queries, truth)
    v.state = replace(v.state, search_param=chosen)
    p50, p95, recall = run_queries(v, queries, truth)
    path = v.save(folder, 1)
    ram = rss_growth(folder, x.shape[1], queries)
    out = {"structure": v.description, "param": chosen, "build_s": build, "nq": len(queries),
           "p50_ms": p50, "p95_ms": p95, "recall": recall, "calibrated": v.state.recall,
           "disk_b": path.stat().st_size / len(x), "ram_b": ram / len(x), "sweep": sweep}
    del v
    for p in folder.iterdir():
        p.unlink()
    return out


def run_queries(v: VectorIndex, queries: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """p50 and p95 ms of one-query searches after a warm-up, and mean recall@10 against ``truth``."""
    for q in queries[:20]:
        v.search(q, 10)
    times, recall = [], []
    for q, tr in zip(queries, truth):
        t = time.perf_counter()
        _, found = v.search(q, 10)
        times.append(time.perf_counter() - t)
        recall.append(len(set(found) & set(tr)) / 10)
    return percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000, float(np.mean(recall))


def rss_growth(folder: Path, dim: int, queries: np.ndarray) -> int:
    """Bytes a fresh process's RSS grows by when it loads the saved index and answers the queries."""
    qfile = folder / "queries.npy"
    np.save(qfile, queries)
    code = ("import sys, numpy as np; from pathlib import Path\n"
            "def rss():\n"
            "    f = dict(l.split(':') for l in open('/proc/self/status') if l.startswith(('RssAnon', 'RssFile')))\n"
            "    return sum(int(v.split()[0]) for v in f.values()) * 1024\n"
            "import faiss; from searcher.store.faiss_index import VectorIndex\n"
            "q = np.load(sys.argv[2]); before = rss()\n"
            "v, _ = VectorIndex.load(Path(sys.argv[1]), int(sys.argv[3]))\n"
            "for x in q: v.search(x, 10)\n"
            "print(rss() - before)")
    r = subprocess.run([sys.executable, "-c", code, str(folder), str(qfile), str(dim)], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    qfile.unlink()
    return int(r.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="Comma-separated chunk counts.")
    ap.add_argument("--real-index", type=Path, default=Path("/work/cache/idx100k"),
                    help="searcher index whose vectors are the real ones (built when absent).")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Where to write the section.")
    ap.add_argument("--dtype-quality", action="store_true",
                    help="Measure what float16 and int8 vectors cost in quality instead (section bench_scale_dtype).")
    ap.add_argument("--ndcg", action="store_true",
                    help="With --dtype-quality: also nDCG@10 on cranfield and scifact (embeds both collections).")
    ap.add_argument("--ndcg-index", action="append", default=[], metavar="NAME=PATH",
                    help="With --ndcg: an existing float32 eval index to copy for collection NAME, instead of "
                    "indexes/eval-NAME (saves embedding the collection again).")
    args = ap.parse_args()
    real = real_vectors(args.real_index)
    print(f"{len(real)} real vectors", file=sys.stderr)
    queries = query_vectors()
    if args.dtype_quality:
        bases = {name: Path(path) for name, _, path in (b.partition("=") for b in args.ndcg_index)}
        dtype_quality(args.out, real, queries, args.ndcg, bases)
        return
    probes = calibration_queries(args.real_index, real.shape[1])
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    points = [(n, f"{n:,}" + (" real" if n <= len(real) else f" ({len(real):,} real + {n - len(real):,} synthetic)"))
              for n in sizes]
    extra = synthetic(real, max(0, max(sizes) - len(real)))
    if len(extra) >= len(real):
        points.append((0, f"{len(real):,} synthetic only"))
    with tempfile.TemporaryDirectory() as tmp:
        for n, label in points:
            if n == 0:
                x = extra[:len(real)]
            else:
                x = real[:n] if n <= len(real) else np.vstack([real, extra[:n - len(real)]])
            truth = exact_top10(x, queries)
            default = choose(len(x), x.shape[1], AnnSettings())
            for spec in dict.fromkeys([default, AnnSpec("flat")]):
                if n == 0 and spec.kind == "flat":
                    continue
                print(f"{label}: {spec.factory()} ...", file=sys.stderr, flush=True)
                r = measure(x, spec, queries, truth, probes, Path(tmp))
                rows.append((label, spec == default, r))
                print(f"  {r}", file=sys.stderr, flush=True)
                write(args.out, rows, len(queries))


def dtype_agreement(real: np.ndarray, queries: np.ndarray) -> list[str]:
    """Recall@10 of exact search over vectors stored in each dtype (SQLite encoding, then the FAISS
    codes an index run builds) against exact float32 search, for the real queries: cheap, no embedding."""
    from searcher.store.sqlite import decode_vectors, encode_vector

    ids = np.arange(len(real), dtype=np.int64)
    truth = exact_top10(real, queries)
    lines = [f"Top-10 agreement with float32 exact search over the {len(real):,} real vectors, "
             f"{len(queries)} real queries, exact (flat) search in each dtype:", "",
             "| dtype | recall@10 vs float32 | SQLite bytes/vector | .faiss bytes/vector |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "float16", "int8"):
            stored = decode_vectors([encode_vector(v, dtype) for v in real], real.shape[1], dtype)
            v = VectorIndex(real.shape[1])
            v.rebuild(AnnSpec("flat", dtype), lambda: iter([(ids, stored)]), len(real), lambda: queries)
            recall = np.mean([len(set(v.search(q, 10)[1]) & set(t)) / 10 for q, t in zip(queries, truth)])
            size = v.save(Path(tmp), 1).stat().st_size
            lines.append(f"| {dtype} | {recall:.4f} | {len(encode_vector(real[0], dtype))} | {size / len(real):.0f} |")
    return lines


def dtype_quality(out: Path, real: np.ndarray, queries: np.ndarray, ndcg: bool, bases: dict[str, Path]) -> None:
    import json
    import shutil

    from searcher import Searcher
    from searcher.api import default_index_root
    from searcher.store.sqlite import encode_vector

    rows: list = []
    agreement = dtype_agreement(real, queries)
    write_dtype(out, agreement, rows)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("cranfield", "scifact") if ndcg else ():
            base = bases.get(name, default_index_root() / f"eval-{name}")
            if not base.exists():
                Searcher(base).evaluate(DATA / name)
            for dtype in ("float32", "float16", "int8"):
                idx = Path(tmp) / f"{name}-{dtype}"
                shutil.copytree(base, idx, ignore=shutil.ignore_patterns("vectors.g*", "write.lock"))
                manifest = json.loads((idx / "manifest.json").read_text())
                manifest["vectors"]["dtype"] = dtype
                (idx / "manifest.json").write_text(json.dumps(manifest))
                with sqlite3.connect(idx / "searcher.db") as c:
                    c.executemany("UPDATE embeddings SET vector = ? WHERE text_hash = ?",
                                  [(encode_vector(np.frombuffer(v, np.float32), dtype), h)
                                   for h, v in c.execute("SELECT text_hash, vector FROM embeddings").fetchall()])
                r = Searcher(idx).evaluate(DATA / name, ("dense", "hybrid"))
                disk = sum(p.stat().st_size for p in idx.iterdir() if p.name.startswith("vectors.g"))
                rows.append((name, dtype, r, disk))
                print(name, dtype, {m: round(v["ndcg@10"], 4) for m, v in r.items()}, file=sys.stderr, flush=True)
                write_dtype(out, agreement, rows)


def write_dtype(out: Path, agreement: list[str], rows: list) -> None:
    lines = ["## Vector dtype and search quality (`scripts/bench_scale.py --dtype-quality`)", "",
             f"Machine: {benchlib.machine_line()}. Code: {benchlib.code_version(ROOT)}.", "",
             f"Command: `{benchlib.command_line('scripts/bench_scale.py', sys.argv[1:])}`", "", *agreement, "",
             "nDCG@10 (`--ndcg`): the same chunks with their vectors stored as float32, float16 or int8 "
             "(per-vector scale; FAISS SQ8 codes); exact (flat) search in each; by `Searcher.evaluate`, as "
             "`searcher eval` reports." if rows else "nDCG@10: not measured in this run (it needs `--ndcg`)."]
    if rows:
        lines += ["", "| collection | dtype | dense nDCG@10 | Δ vs float32 | hybrid nDCG@10 | Δ vs float32 "
                  "| .faiss bytes |", "|---|---|---|---|---|---|---|"]
    ref = {name: r for name, dtype, r, _ in rows if dtype == "float32"}
    for name, dtype, r, disk in rows:
        d, h = r["dense"]["ndcg@10"], r["hybrid"]["ndcg@10"]
        lines.append(f"| {name} | {dtype} | {d:.4f} | {d - ref[name]['dense']['ndcg@10']:+.4f} | {h:.4f} | "
                     f"{h - ref[name]['hybrid']['ndcg@10']:+.4f} | {disk:,} |")
    benchlib.write_section(out, "bench_scale_dtype", "\n".join(lines))


def write(out: Path, rows: list, nq: int) -> None:
    lines = [
        "## Vector search at scale (`scripts/bench_scale.py`)", "",
        f"Machine: {benchlib.machine_line()}; load average {os.getloadavg()[0]:.1f} at the end of this run. "
        f"Code: {benchlib.code_version(ROOT)}.", "",
        f"Command: `{benchlib.command_line('scripts/bench_scale.py', sys.argv[1:])}`", "",
        "Search times are one query at a time through `VectorIndex.search(q, k=10)`, query embedding excluded, "
        f"over {nq} real queries (the judged queries of scifact and cranfield, encoded with the packaged model; "
        f"the first {FLAT_QUERIES} for the exact baseline); build includes calibration; recall@10 is against "
        "exact float32 search for those queries. *calibrated* is the recall the index "
        f"measured on itself when built ({PROBES} query-like probes: 4-16 consecutive words from chunks spread "
        "over the real index, embedded with the model, as an index run makes them) and shows in "
        "`searcher info`. "
        "RAM is the RSS growth of a fresh process that loads the saved index (memory-mapped) and answers "
        "every query. Synthetic vectors: normalise(w·a + (1−w)·b + e), a and b random real vectors, "
        "w ~ U[0.5, 1], e Gaussian of norm ≈ 0.3.", "",
        "| chunks | structure | default | build s | param | queries | p50 ms | p95 ms | recall@10 | calibrated "
        "| disk B/chunk | RAM B/chunk |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, is_default, r in rows:
        lines.append(f"| {label} | {r['structure']} | {'yes' if is_default else 'baseline'} | {r['build_s']:.1f} | "
                     f"{r['param'] or '—'} | {r['nq']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                     f"{r['recall']:.3f} | {r['calibrated']:.3f} | {r['disk_b']:.0f} | {r['ram_b']:.0f} |")
    lines += ["", "The same structures at other efSearch / nprobe values (same build, same queries): "
              "param → p50 ms / recall@10."]
    lines += [f"- {label}, {r['structure']}: " + "; ".join(f"{p} → {p50:.2f} ms / {rec:.3f}"
                                                            for p, (p50, _, rec) in sorted(r["sweep"].items()))
              for label, _, r in rows if r["sweep"]]
    top = [(label, r) for label, is_default, r in rows if is_default and label.startswith("1,000,000")]
    for label, r in top:
        met = r["p50_ms"] <= 5 and r["recall"] >= 0.95
        lines += ["", f"Goal at a million chunks, by default: warm search p50 ≤ 5 ms (embedding excluded) with "
                  f"recall@10 ≥ 0.95 against exact search — measured **{r['p50_ms']:.2f} ms** and **{r['recall']:.3f}**: "
                  f"{'met' if met else 'not met'}."]
    benchlib.write_section(out, SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()
