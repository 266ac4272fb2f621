"""Whole-process cost of a new index with the default model, against the fastest peer.

Why this exists: an index run is what a user waits for, and it is a process: interpreter start,
imports, model load, reading, embedding, commits, the vector structure, exit. Timing the indexing
call alone (scripts/bench_peers.py) leaves out what differs most between tools. Here each build is
a child process timed from outside with ``os.wait4``: CPU = user + sys of the child and its
children, wall from spawn to exit, peak RSS (ru_maxrss).

- ours: ``python -m searcher index FOLDER --index NEW`` twice over: "first" with an empty user cache
  (``SEARCHER_CACHE``: the model is loaded with torch, exported to ONNX and checked: the first index
  of the model on a machine) and "cached" with the export already in the cache (every later index).
- the peers: a child process that only builds (peer_bench.py's own ``build`` for the system, given
  the same folder cut by peer_bench's ``load_chunks``), with the peers' venv (``--peer-python``);
  every peer peer_bench supports runs once (``--peers``), then the one with the least CPU
  alternates with ours for ``--runs`` rounds. Medians; load average recorded.
- folders: short = cranfield's 1,398 abstracts, one file each (one chunk each); long = SciFact
  abstracts (title and text) concatenated ``--per-file`` to a file, the first ``--long-docs``
  of them (many chunks per file); three = the first 3 SciFact abstracts (the fixed cost of a new
  index). ``--before PATH``: the same command with another checkout's code, one more row.

    python scripts/bench_process.py --peer-python /work/peers-venv/bin/python [--runs 3] \\
        [--work /tmp/bench-process] [--out docs/benchmarks.md]
    python scripts/bench_process.py --folders three --peers '' --before /path/to/older/checkout \\
        --work /tmp/bench-process --out docs/benchmarks.md     # adds its table to the stored ones
"""
from __future__ import annotations

import argparse
import gzip
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
sys.path.insert(0, str(ROOT))
import benchlib  # noqa: E402

DATA = Path("/work/shared/data")
PEER_BENCH = "/work/shared/tools/peer_bench.py"
ALL_PEERS = ("st-brute", "st-faiss", "txtai", "langchain", "chroma", "lancedb", "llm")
# a peer's build alone, in a process of its own: the same folder, chunked as peer_bench does
PEER_BUILD = """
import importlib.util, json, shutil, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("peer_bench", sys.argv[1])
pb = importlib.util.module_from_spec(spec); spec.loader.exec_module(pb)
system, corpus, work, words = sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5])
ids, texts = pb.load_chunks(corpus, 10**9, words, True)
shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
pb.SYSTEMS[system]().build(ids, texts, work, {"model": pb.default_model(), "bs": 32})
print(json.dumps({"chunks": len(ids)}))
"""


def _docs(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def make_folders(work: Path, long_docs: int, per_file: int) -> dict[str, Path]:
    """The short folder (a file per cranfield abstract), the long one (SciFact abstracts,
    ``per_file`` to a file) and three SciFact abstracts; written only when missing."""
    short, long, three = work / "short", work / "long", work / "three"
    if not three.is_dir():
        three.mkdir(parents=True)
        for d in _docs(DATA / "scifact" / "corpus.jsonl.gz")[:3]:
            (three / f"{d['_id']}.txt").write_text(f"{d['title']}\n\n{d['text']}\n", encoding="utf-8")
    if not short.is_dir():
        short.mkdir(parents=True)
        for d in _docs(DATA / "cranfield" / "corpus.jsonl.gz"):
            text = f"{d.get('title', '')}\n\n{d.get('text', '')}".strip()
            if text:
                (short / f"{d['_id']}.txt").write_text(text + "\n", encoding="utf-8")
    if not long.is_dir():
        long.mkdir(parents=True)
        docs = _docs(DATA / "scifact" / "corpus.jsonl.gz")[:long_docs]
        for i in range(0, len(docs), per_file):
            body = "\n\n".join(f"{d['title']}\n\n{d['text']}" for d in docs[i:i + per_file])
            (long / f"part{i // per_file:04d}.txt").write_text(body + "\n", encoding="utf-8")
    return {"short": short, "long": long, "three": three}


def run_child(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd``; its CPU (user + sys), wall and peak RSS, from wait4 on it alone."""
    start = time.perf_counter()
    # cwd: a folder holding no package, so that PYTHONPATH alone says which searcher runs (-m puts cwd first);
    # output to files, not pipes: a child's long --json output would fill a pipe nobody reads until wait4
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        p = subprocess.Popen(cmd, env=env, stdout=fout, stderr=ferr, cwd="/")
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read().decode(), ferr.read().decode()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])}…: exit {p.returncode}\n{err[-2000:]}")
    return {"cpu": ru.ru_utime + ru.ru_stime, "wall": wall, "rss_mb": ru.ru_maxrss / 1024, "out": out,
            "load": os.getloadavg()[0]}


def ours(folder: Path, index: Path, cache: Path, fresh_cache: bool, env: dict[str, str]) -> dict[str, Any]:
    shutil.rmtree(index, ignore_errors=True)
    if fresh_cache:
        shutil.rmtree(cache, ignore_errors=True)
    r = run_child([sys.executable, "-m", "searcher", "index", str(folder), "--index", str(index), "--json"],
                  {**env, "SEARCHER_CACHE": str(cache)})
    r["disk_mb"] = sum(p.stat().st_size for p in index.iterdir() if p.is_file()) / 2**20
    summary = json.loads(r.pop("out").splitlines()[-1])["summary"]
    r["chunks"] = summary["chunks_embedded"]
    return r


def peer(python: str, system: str, folder: Path, work: Path, words: int, env: dict[str, str]) -> dict[str, Any]:
    r = run_child([python, "-c", PEER_BUILD, PEER_BENCH, system, str(folder), str(work / system), str(words)], env)
    r["chunks"] = json.loads(r.pop("out").splitlines()[-1])["chunks"]
    r["disk_mb"] = sum(p.stat().st_size for p in (work / system).rglob("*") if p.is_file()) / 2**20
    return r


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer-python", help="python of the venv with the peers (pip install -e .[bench])")
    ap.add_argument("--peers", default=",".join(ALL_PEERS), help="peers run once each; the least CPU goes on "
                                                                 "('' for none)")
    ap.add_argument("--runs", type=int, default=3, help="alternating rounds: ours first, ours cached, the peer")
    ap.add_argument("--long-docs", type=int, default=600, help="SciFact abstracts in the long folder")
    ap.add_argument("--per-file", type=int, default=20, help="abstracts per file in the long folder")
    ap.add_argument("--folders", default="short,long", help="which folders to measure (short, long, three)")
    ap.add_argument("--before", help="PYTHONPATH of the code to compare with (e.g. a checkout of an older "
                                     "commit): one more row, alternating")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-process"), help="scratch folder")
    ap.add_argument("--out", type=Path, help="write the bench_process section of this file")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    folders = make_folders(a.work, a.long_docs, a.per_file)
    stored = a.work / "results.json"     # each folder's latest results: folders can be measured in turns
    results: dict[str, dict[str, Any]] = json.loads(stored.read_text()) if stored.is_file() else {}
    for name in a.folders.split(","):
        results[name] = measure(a, name, folders[name], env)
        stored.write_text(json.dumps(results, indent=1))
    body = report(results)
    print(body)
    if a.out:
        benchlib.write_section(a.out, "bench_process", body)


def measure(a: argparse.Namespace, name: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    load_before = os.getloadavg()
    cache = a.work / "cache"
    rows: dict[str, list[dict[str, Any]]] = {"first": [ours(folder, a.work / "idx", cache, True, env)], "cached": []}
    # short: a file is one chunk for the peers too; long: windows of as many words as our chunks hold
    total = sum(len(p.read_text(encoding="utf-8").split()) for p in folder.glob("*.txt"))
    words = 1000 if name != "long" else round(total / rows["first"][0]["chunks"])
    screen = {}
    for system in filter(None, a.peers.split(",")):
        try:
            screen[system] = peer(a.peer_python, system, folder, a.work / "peers", words, env)
        except SystemExit as exc:
            screen[system] = {"error": str(exc).splitlines()[0]}
        print(name, system, screen[system], flush=True)
    ok = {s: r for s, r in screen.items() if "error" not in r}
    fastest = min(ok, key=lambda s: ok[s]["cpu"]) if ok else None
    if fastest:
        rows[fastest] = [ok[fastest]]
    if a.before:
        rows["before"] = []
    for i in range(a.runs):
        if i:   # round 0: the run before the screening, and the screening run
            rows["first"].append(ours(folder, a.work / "idx", cache, True, env))
            if fastest:
                rows[fastest].append(peer(a.peer_python, fastest, folder, a.work / "peers", words, env))
        rows["cached"].append(ours(folder, a.work / "idx", cache, False, env))
        if a.before:
            rows["before"].append(ours(folder, a.work / "idx", cache, True, {**env, "PYTHONPATH": a.before}))
        print(name, i, {k: v[-1] for k, v in rows.items()}, flush=True)
    what = {"short": f"cranfield, {len(list(folder.glob('*.txt')))} abstracts, a file each",
            "long": f"SciFact, the first {a.long_docs} abstracts, {a.per_file} to a file "
                    f"({len(list(folder.glob('*.txt')))} files; the peers' windows: {words} words)",
            "three": "the first 3 SciFact abstracts, a file each"}[name]
    load_after = os.getloadavg()
    return {"what": what, "screen": screen, "fastest": fastest, "rows": rows, "runs": a.runs,
            "before": a.before, "command": benchlib.command_line("scripts/bench_process.py", sys.argv[1:]),
            "machine": f"{benchlib.machine_line()}; code: {benchlib.code_version(ROOT)}",
            "load": "/".join(f"{x:.2f}" for x in load_before) + " before, "
                    + "/".join(f"{x:.2f}" for x in load_after) + " after"}


def report(results: dict[str, dict[str, Any]]) -> str:
    lines = ["## Whole-process indexing cost, default model, against the fastest peer (`scripts/bench_process.py`)", "",
             "The measure: each build is one child process, timed from outside with `os.wait4`: **CPU** = user + "
             "sys seconds of that process and its threads (interpreter start, imports, model load, reading, "
             "chunking, embedding, commits, vector structure, exit), **wall** from spawn to exit, **peak RSS** "
             "(ru_maxrss). Ours is `python -m searcher index FOLDER --index NEW --json` with the default model; "
             "*first* = empty user cache (torch loads the model, exports and checks it: the first index of the "
             "model on the machine), *cached* = the checked export already in the cache (every later index); "
             "*before* = the code before the shared export (`--before`), which exported into every new index. "
             "A peer's process runs only its build (peer_bench.py's `build`, the same folder cut by its "
             "`load_chunks`; short folder: one chunk per file; long: windows of as many words as our chunks "
             "hold on average, so that both embed about as many chunks), same packaged all-MiniLM-L6-v2, batch "
             "32. Every peer ran once; the one with the least CPU then alternated with ours; medians of the "
             "rounds. Ratio = the peer's CPU ÷ ours (goal ≥ 1.3 for *cached*).", ""]
    labels = {"first": "searcher, first index of the model", "cached": "searcher, export cached",
              "before": "searcher before the shared export"}
    for name, r in results.items():
        rows, fastest = r["rows"], r["fastest"]
        lines += [f"### {name} documents: {r['what']}", "", f"Command: `{r['command']}`  ",
                  f"Machine: {r['machine']}. Load average (1/5/15 min) {r['load']} (a shared machine: compare "
                  f"within a table). {r['runs']} rounds.", ""]
        if r["screen"]:
            lines += ["Screening (one run each, CPU s): " + ", ".join(
                f"{s} {v['cpu']:.1f}" if "error" not in v else f"{s} failed ({v['error'][:60]})"
                for s, v in r["screen"].items()) + f". Fastest: **{fastest}**.", ""]
        lines += ["| build | chunks | CPU s | wall s | peak RSS MB | index MB | peer CPU ÷ ours |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        peer_cpu = median(rows[fastest], "cpu") if fastest else None
        for key, rs in rows.items():
            ratio = f"{peer_cpu / median(rs, 'cpu'):.2f}" if peer_cpu else "—"
            lines.append(f"| {labels.get(key, key)} | {rs[0]['chunks']} | {median(rs, 'cpu'):.1f} | "
                         f"{median(rs, 'wall'):.1f} | {median(rs, 'rss_mb'):.0f} | {median(rs, 'disk_mb'):.1f} | "
                         f"{ratio} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
