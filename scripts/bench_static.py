"""The static model (``--model static``) against the default model: speed, cost and quality.

Why this exists: a static table embeds text by lookups and a mean, so indexing should run far
faster than the transformer (goal: ≥ 30× its chunks/s); the question is what it costs in quality
(goal: hybrid nDCG@10 ≥ 0.97× the default model's on cranfield and scifact) and what a cold search
then costs. Measured here, in one run:

- distillation: a fresh process distilling the table into the bench cache (wall, CPU, peak RSS),
  and the table's size on disk and in memory. With the table already cached, the seconds recorded
  when it was made (``searcher.json``) are reported instead (no RSS).
- indexing: the first collection written as files (``benchlib.write_documents``) indexed into a new
  index by each model in turn (default, static, default, ...; ``--runs`` pairs, medians), in this
  process. Model load (and, for the default model, its ONNX Runtime set-up) is timed apart; the
  run's chunks/s is chunks embedded over the indexing run's own seconds (``IndexReport.seconds``:
  read, chunk, embed, commit; not the query-encoder export after the first write).
- quality: ``Searcher.evaluate`` (what ``searcher eval`` runs) per collection and model, dense,
  keyword and hybrid (the default fusion); indexes kept under --root and reused.
- cold search: a fresh ``searcher search QUERY --index IDX`` per query on the indexing step's two
  indexes, alternating (wall, CPU, peak RSS from ``wait4``; medians over --cold-runs × 3 queries).

    python scripts/bench_static.py /work/shared/data/cranfield /work/shared/data/scifact \\
        [--root /tmp/bench-static] [--runs 3] [--cold-runs 5] [--out docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import benchlib  # noqa: E402
from bench_cold_query import child_env, run_cold  # noqa: E402

from searcher import Searcher  # noqa: E402
from searcher.embed import static  # noqa: E402
from searcher.embed.models import load_model  # noqa: E402
from searcher.search.evaluation import load_collection  # noqa: E402

DEFAULT = "all-MiniLM-L6-v2"
MODELS = (DEFAULT, static.STATIC_MODEL)
MODES = ("dense", "keyword", "hybrid")
QUERIES = ("boundary layer transition at high speed", "heat transfer in hypersonic flow",
           "how does the wing pressure distribution change with angle of attack")
DISTILL = "from searcher.embed import static; print(static.distilled(static.default_source()))"


def distillation(cache: Path, fresh: bool) -> dict[str, Any]:
    """Distil the static table into ``cache`` in a fresh process (or report the cached one)."""
    folder = static.cache_folder(static.default_source())
    if fresh and folder.exists():
        shutil.rmtree(folder)
    measured = None
    if not (folder / static.RECORD).is_file():
        measured = run_cold([([sys.executable, "-c", DISTILL], child_env({static.CACHE_ENV: str(cache),
                                                                           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}))])[0]
    record = json.loads((folder / static.RECORD).read_text())
    enc = static.load_static()
    return {"record": record, "measured": measured, "disk_bytes": (folder / "model.safetensors").stat().st_size,
            "memory_bytes": enc.table_bytes, "shape": list(enc.table_shape)}


def load_seconds(model: str) -> float:
    """Model load, plus for the transformer its ONNX Runtime set-up (export and check at first bulk call)."""
    t0 = time.perf_counter()
    enc = load_model(model)
    enc.encode(["a text to set up bulk encoding"] * 64)
    return time.perf_counter() - t0


def indexing(folder: Path, root: Path, runs: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {m: {"load_s": load_seconds(m), "chunks_per_s": [], "docs_per_s": []}
                                      for m in MODELS}
    for run in range(runs):
        for model in MODELS:
            path = root / f"speed-{model}"
            if path.exists():
                shutil.rmtree(path)
            with Searcher(path, model=model) as s:
                report = s.index(folder)
            o = out[model]
            o["chunks"], o["docs"] = report.embedded, len(report.files)
            o["chunks_per_s"].append(report.embedded / report.seconds)
            o["docs_per_s"].append(len(report.files) / report.seconds)
            print(f"run {run + 1}: {model}: {report.embedded} chunks in {report.seconds:.1f}s "
                  f"({o['chunks_per_s'][-1]:.0f} chunks/s)", flush=True)
    return out


def quality(collections: list[Path], root: Path) -> dict[tuple[str, str], dict[str, float]]:
    out = {}
    for coll in collections:
        for model in MODELS:
            with Searcher(root / f"eval-{coll.name}-{model}", model=model) as s:
                r = s.evaluate(coll, MODES)
            out[coll.name, model] = {mode: r[mode]["ndcg@10"] for mode in MODES}
            print(coll.name, model, {k: round(v, 4) for k, v in out[coll.name, model].items()}, flush=True)
    return out


def cold(root: Path, runs: int) -> dict[str, dict[str, float]]:
    env = child_env({"PYTHONPATH": os.environ.get("PYTHONPATH", ""), static.CACHE_ENV: os.environ[static.CACHE_ENV]})
    cmd = [sys.executable, "-m", "searcher", "search"]
    plan = [(model, [*cmd, q, "--index", str(root / f"speed-{model}"), "--json"])
            for _ in range(runs + 1) for q in QUERIES for model in MODELS]
    results = run_cold([(c, env) for _, c in plan])[len(QUERIES) * len(MODELS):]   # first round: warm-up
    out = {}
    for model in MODELS:
        rows = [r for (m, _), r in zip(plan[len(QUERIES) * len(MODELS):], results) if m == model]
        out[model] = {k: statistics.median(r[k] for r in rows) for k in ("wall", "cpu", "rss_mb")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("collections", nargs="+", type=Path, help="BEIR-style collections; the first one is also "
                    "indexed as files for speed and cold search")
    ap.add_argument("--root", type=Path, default=Path("/tmp/bench-static"), help="indexes and the static cache")
    ap.add_argument("--runs", type=int, default=3, help="indexing runs per model (medians)")
    ap.add_argument("--cold-runs", type=int, default=5, help="cold searches per query and model (medians)")
    ap.add_argument("--fresh-distill", action="store_true", help="distil the table again even if cached")
    ap.add_argument("--out", type=Path, help="markdown file whose bench_static section is replaced")
    a = ap.parse_args()
    a.root.mkdir(parents=True, exist_ok=True)
    os.environ[static.CACHE_ENV] = str(a.root / "cache")
    load_before = os.getloadavg()

    dist = distillation(a.root / "cache", a.fresh_distill)
    print("distillation", json.dumps({k: v for k, v in dist.items() if k != "record"}), dist["record"], flush=True)
    coll = load_collection(a.collections[0])
    folder = benchlib.default_docs_folder(coll)
    benchlib.write_documents(coll, folder)
    speed = indexing(folder, a.root, a.runs)
    cold_q = cold(a.root, a.cold_runs)
    print("cold", cold_q, flush=True)
    qual = quality(a.collections, a.root)
    load_after = os.getloadavg()

    med = {m: statistics.median(speed[m]["chunks_per_s"]) for m in MODELS}
    rec, meas = dist["record"], dist["measured"]
    lines = [
        "## Static model (`--model static`) against the default model",
        "",
        f"Command: `{benchlib.command_line('scripts/bench_static.py', sys.argv[1:])}`  ",
        f"Machine: {benchlib.machine_line()}; code: {benchlib.code_version(ROOT)}; load average "
        f"{load_before[0]:.1f} at start, {load_after[0]:.1f} at end (2 cores shared with other work: "
        "ratios are of runs made side by side, absolute figures move with the load).",
        "",
        f"**Distillation** (once per machine, model2vec {rec['model2vec']}, PCA to {rec['settings']['pca_dims']} "
        f"dimensions, SIF {rec['settings']['sif_coefficient']}): {rec['tokens']:,} tokens, "
        + (f"{meas['wall']:.0f} s wall, {meas['cpu']:.0f} s CPU, peak RSS {meas['rss_mb']:.0f} MB in a fresh process"
           if meas else f"{rec['seconds']:.0f} s wall, {rec['cpu_seconds']:.0f} s CPU in the process that made it "
                        "(recorded in the cache's searcher.json)")
        + f". Table: {dist['disk_bytes'] / 2**20:.1f} MiB on disk (float16), {dist['memory_bytes'] / 2**20:.1f} MiB "
        f"in memory (float32, {dist['shape'][0]:,} × {dist['shape'][1]}).",
        "",
        f"**Indexing** {coll.name} as {speed[DEFAULT]['docs']} files into a new index, in-process, "
        f"{a.runs} runs per model alternating (medians):",
        "",
        "| model | model load (s) | chunks | chunks/s | docs/s | × default |",
        "|---|---|---|---|---|---|",
    ]
    for m in MODELS:
        s = speed[m]
        lines.append(f"| {m} | {s['load_s']:.1f} | {s['chunks']} | {med[m]:.0f} | "
                     f"{statistics.median(s['docs_per_s']):.0f} | {med[m] / med[DEFAULT]:.1f} |")
    lines += ["", "Model load for the default model includes its ONNX Runtime set-up (export and check at the "
              "first bulk call); for static, loading the cached table. The static model chunks by its own "
              "tokenizer (≤ 256 tokens, no special tokens) and the default model by its own (≤ 254), so chunk "
              "counts differ a little.", "",
              f"**Cold `searcher search`** on those two indexes, a fresh process per query ({len(QUERIES)} queries × "
              f"{a.cold_runs} runs per model, alternating, after one warm-up round; medians):", "",
              "| index | wall (s) | CPU (s) | peak RSS (MB) |", "|---|---|---|---|"]
    for m in MODELS:
        c = cold_q[m]
        lines.append(f"| {m} | {c['wall']:.2f} | {c['cpu']:.2f} | {c['rss_mb']:.0f} |")
    lines += ["", "**Quality**, nDCG@10 (`Searcher.evaluate`: documents ranked by their best chunk, 100 deep):", "",
              "| collection | mode | default | static | static / default |", "|---|---|---|---|---|"]
    for c in a.collections:
        for mode in MODES:
            d, s = qual[c.name, DEFAULT][mode], qual[c.name, static.STATIC_MODEL][mode]
            lines.append(f"| {c.name} | {mode} | {d:.4f} | {s:.4f} | {s / d:.3f} |")
    if a.out:
        benchlib.write_section(a.out, "bench_static", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
