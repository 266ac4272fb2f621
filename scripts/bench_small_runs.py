"""Small index runs, timed as a person waits for them: a whole `searcher index` process on an index of
≥ 5,000 chunks when nothing changed, and when one small file was edited.

Why this exists: a run that re-indexes one edited note used to load torch and the model (20–35 s
here) to embed one chunk. An index that holds a checked ONNX export now embeds and chunks with it
(docs/search.md), so the claim to check is: one edited small file ≤ 1.5 s wall, a run that finds
nothing changed ≤ 0.3 s, on an idle machine.

Every run is a fresh process timed from outside (wall clock around spawn → exit; CPU and peak RSS
from ``wait4``). With ``--baseline PYTHONPATH`` the same commands also run with another checkout of
searcher (e.g. a worktree of the commit before the change), in turns with ours, so the ratio pairs
runs made under the same machine load.

    python scripts/bench_small_runs.py [--collection /work/shared/data/scifact] [--index PATH] [--runs 7] \\
        [--baseline /path/to/old/checkout] [--out docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))

import benchlib  # noqa: E402

from searcher.search.evaluation import load_collection  # noqa: E402


def timed(cmd: list[str], pythonpath: str) -> dict[str, float]:
    """One fresh process: wall seconds, CPU seconds (user + system), peak RSS in MB."""
    env = {**os.environ, "PYTHONPATH": pythonpath, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    # cwd: `python -m` puts the working folder first on sys.path, ahead of PYTHONPATH
    proc = subprocess.Popen(cmd, env=env, cwd=pythonpath, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        sys.exit(f"{' '.join(cmd[:6])} failed: {proc.stderr.read().decode()[-800:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--collection", default="/work/shared/data/scifact", help="a BEIR-style collection folder")
    ap.add_argument("--index", type=Path, help="index folder (default indexes/bench-small-<collection>)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each kind (medians reported)")
    ap.add_argument("--baseline", help="PYTHONPATH of another searcher checkout to time in turns with this one")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="benchmarks file to update")
    args = ap.parse_args()

    coll = load_collection(args.collection)
    folder = benchlib.default_docs_folder(coll)
    files = benchlib.write_documents(coll, folder)
    idx = args.index or ROOT / "indexes" / f"bench-small-{Path(args.collection).name}"
    ours = str(ROOT)

    def index_cmd(checkout: str) -> list[str]:   # checkouts from before searcher/__main__.py ran searcher.cli
        module = "searcher" if (Path(checkout) / "searcher" / "__main__.py").exists() else "searcher.cli"
        return [sys.executable, "-m", module, "index", str(folder), "--index", str(idx), "--quiet"]

    first = timed(index_cmd(ours), ours)     # builds the index (and its export) if it is not there yet
    edited = sorted(files.values())[0]
    original = edited.read_text(encoding="utf-8")
    systems = {"ours": ours, **({"baseline": args.baseline} if args.baseline else {})}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for run in range(args.runs + 1):       # run 0 warms the page cache and byte-compiled modules
            for name, path in systems.items():
                for kind in ("no change", "one edited file"):
                    if kind == "one edited file":
                        edited.write_text(original + f"\nEdited in run {run} by {name}.\n", encoding="utf-8")
                    r = timed(index_cmd(path), path)
                    if run:
                        results.setdefault((name, kind), []).append(r)
    finally:
        edited.write_text(original, encoding="utf-8")
    timed(index_cmd(ours), ours)

    def med(name: str, kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(name, kind)])

    rows = ["| run | system | wall p50 (min–max) s | CPU p50 s | peak RSS p50 MB |" + (" ours/baseline wall |" if args.baseline else ""),
            "|---|---|---|---|---|" + ("---|" if args.baseline else "")]
    for kind in ("no change", "one edited file"):
        for name in systems:
            walls = [r["wall"] for r in results[(name, kind)]]
            ratio = ""
            if args.baseline:
                pairs = [a["wall"] / b["wall"] for a, b in zip(results[("ours", kind)], results[("baseline", kind)])]
                ratio = f" {statistics.median(pairs):.3f} |" if name == "ours" else " |"
            rows.append(f"| {kind} | {name} | {statistics.median(walls):.2f} ({min(walls):.2f}–{max(walls):.2f}) | "
                        f"{med(name, kind, 'cpu'):.2f} | {med(name, kind, 'rss'):.0f} |{ratio}")
    chunks = sum(1 for _ in files)
    body = (f"## Small index runs (one edited file, no change)\n\n"
            f"`searcher index` on {coll.name} ({chunks:,} documents, one chunk or more each) as a whole process, "
            f"{args.runs} runs of each kind after a warm-up, systems in turns; load average at the end: "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. The build before it took {first['wall']:.0f} s. "
            f"Baseline: {args.baseline or 'none'}.\n\n" + "\n".join(rows) +
            f"\n\nCommand: `{benchlib.command_line('scripts/bench_small_runs.py', sys.argv[1:])}`\n")
    benchlib.write_section(args.out, "small-runs", body)
    print(body)


if __name__ == "__main__":
    main()
