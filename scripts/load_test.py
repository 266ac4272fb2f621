#!/usr/bin/env python
"""Load test for ``searcher serve``: N concurrent search clients for S seconds while an incremental
index run adds, changes and deletes files and the API adds and deletes document batches.

Loopback only, bounded in time (--seconds, at most 600) and in requests (--max-requests).

Checks, besides "every request answered 200":
* stable files (never touched) are always found by their own unique words: rank 1;
* a churn file is seen whole or not at all: a search filtered to its path returns either 0 chunks
  or the full count of one version of the file, never part of it;
* an API batch of 4 documents (one POST) is seen as 4 or 0, never 1–3.

    python scripts/load_test.py --clients 32 --seconds 60 --write-docs docs/benchmarks.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
TOPICS = ["logging and log rotation", "database backups", "baking sourdough bread", "growing tomatoes",
          "network retries", "kubernetes deployments", "python packaging", "git branching", "cycling routes",
          "coffee brewing", "tax returns", "bird watching", "chess openings", "guitar chords", "sailing knots",
          "mountain hiking", "home insulation", "electric cars", "solar panels", "machine learning"]
QUERIES = ["how do I rotate the logs", "when do backups run", "bread recipe overnight rise", "water tomato plants",
           "retry on connection error", "rolling deployment", "build a wheel", "merge a feature branch",
           "best cycling route", "pour over coffee ratio", "deduct expenses", "spot a heron", "sicilian defence",
           "barre chords", "bowline knot", "altitude sickness", "attic insulation", "charging an electric car",
           "panel efficiency", "gradient descent"]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def paragraph(rng: random.Random, topic: str, n: int) -> str:
    return " ".join(f"This note is about {topic}; {' '.join(rng.choices(WORDS, k=8))}." for _ in range(n))


def unique_word(i: int, kind: str) -> str:
    letters = "bcdfghjklmnpqrstvwxz"
    return kind + "".join(letters[int(d)] for d in f"{i:04d}")


def make_corpus(root: Path, stable: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for i in range(stable):
        topic = TOPICS[i % len(TOPICS)]
        (root / "stable").mkdir(parents=True, exist_ok=True)
        (root / "stable" / f"s{i:03d}.md").write_text(
            f"# {topic.title()} {i}\n\nThe marker {unique_word(i, 'stab')} appears only here.\n\n"
            + paragraph(rng, topic, 12) + "\n")


def churn_text(i: int, version: int) -> str:
    rng = random.Random(i * 1000 + version)
    paras = [paragraph(rng, TOPICS[(i + j) % len(TOPICS)], 10) for j in range(2 + version % 3)]
    return f"# Churn {i} v{version}\n\n" + "\n\n".join(
        f"{unique_word(i, 'chrn')} section {j}. {p}" for j, p in enumerate(paras)) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(http: httpx.Client, server: subprocess.Popen, seconds: float = 180) -> None:
    """Until the server answers /health (it loads the index first)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            http.get("/health")
            return
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start") from None
            time.sleep(0.2)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.write_latencies: list[float] = []
        self.errors: list[str] = []
        self.inconsistent: list[str] = []
        self.requests = 0
        self.churn_counts: dict[str, set[int]] = defaultdict(set)

    def error(self, what: str) -> None:
        with self.lock:
            if len(self.errors) < 1000:
                self.errors.append(what)

    def bad(self, what: str) -> None:
        with self.lock:
            if len(self.inconsistent) < 1000:
                self.inconsistent.append(what)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-requests", type=int, default=1_000_000)
    ap.add_argument("--stable", type=int, default=60, help="files never touched")
    ap.add_argument("--churn", type=int, default=12, help="files created, changed and deleted during the run")
    ap.add_argument("--readers", type=int, default=2, help="serve --readers")
    ap.add_argument("--write-docs", type=Path, help="record the results in this markdown file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 600)

    tmp = Path(tempfile.mkdtemp(prefix="searcher-load-"))
    corpus, index = tmp / "corpus", tmp / "index"
    make_corpus(corpus, args.stable)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("SEARCHER_TOKEN", None)
    server = subprocess.Popen([sys.executable, "-m", "searcher", "serve", "--index", str(index), "--folder",
                               str(corpus), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                               "--readers", str(args.readers)], env=env)
    stats = Stats()
    try:
        http = httpx.Client(base_url=url, timeout=120)
        wait_for_server(http, server)

        def run_index() -> dict:
            job = http.post("/index").json()
            while job["status"] in ("queued", "running"):
                time.sleep(0.1)
                job = http.get(job["status_url"]).json()
            return job

        t0 = time.monotonic()
        job = run_index()
        assert job["status"] == "done", job
        print(f"initial index: {job['summary']} in {time.monotonic() - t0:.1f}s", flush=True)

        stop = threading.Event()
        index_runs = [0]
        api_batches = [0]

        def indexer():
            rng = random.Random(7)
            version = 0
            while not stop.is_set():
                for _ in range(rng.randint(1, 4)):
                    i = rng.randrange(args.churn)
                    p = corpus / "churn" / f"c{i:03d}.md"
                    p.parent.mkdir(exist_ok=True)
                    if p.exists() and rng.random() < 0.4:
                        p.unlink()
                    else:
                        version += 1
                        p.write_text(churn_text(i, version))
                t = time.perf_counter()
                job = run_index()
                with stats.lock:
                    stats.write_latencies.append(time.perf_counter() - t)
                if job["status"] != "done":
                    stats.error(f"index job: {job}")
                index_runs[0] += 1

        def api_writer():
            w = httpx.Client(base_url=url, timeout=120)
            b = 0
            while not stop.is_set():
                t = time.perf_counter()
                r = w.post("/documents", json={"documents": [
                    {"id": f"g{b}-{j}", "text": f"group {b} item {j}: {TOPICS[(b + j) % 20]}",
                     "metadata": {"group": b}} for j in range(4)]})
                if r.status_code != 200:
                    stats.error(f"POST /documents {r.status_code} {r.text[:200]}")
                if b:
                    r = w.post("/documents/delete", json={"ids": [f"g{b - 1}-{j}" for j in range(4)]})
                    if r.status_code != 200:
                        stats.error(f"POST /documents/delete {r.status_code} {r.text[:200]}")
                with stats.lock:
                    stats.write_latencies.append(time.perf_counter() - t)
                b += 1
                api_batches[0] = b
                time.sleep(0.2)

        def client(n: int):
            rng = random.Random(100 + n)
            c = httpx.Client(base_url=url, timeout=120)
            while not stop.is_set():
                with stats.lock:
                    if stats.requests >= args.max_requests:
                        stop.set()
                        return
                    stats.requests += 1
                roll = rng.random()
                check = None
                if roll < 0.7:
                    body = {"query": rng.choice(QUERIES), "k": 10, "mode": rng.choice(["hybrid", "dense", "keyword"])}
                elif roll < 0.8:
                    i = rng.randrange(args.stable)
                    body = {"query": unique_word(i, "stab"), "k": 3, "mode": "keyword"}
                    check = ("stable", i)
                elif roll < 0.9:
                    i = rng.randrange(args.churn)
                    body = {"query": f"{unique_word(i, 'chrn')} section", "k": 50, "mode": "keyword",
                            "filters": {"path": f"*/churn/c{i:03d}.md"}}
                    check = ("churn", i)
                else:
                    g = max(0, api_batches[0] - rng.randint(0, 2))
                    body = {"query": "group item", "k": 10, "mode": "keyword", "filters": {"metadata": {"group": g}}}
                    check = ("group", g)
                t = time.perf_counter()
                try:
                    r = c.post("/search", json=body)
                except httpx.HTTPError as exc:
                    stats.error(f"{type(exc).__name__}: {exc}")
                    continue
                dt = time.perf_counter() - t
                if r.status_code != 200:
                    stats.error(f"POST /search {r.status_code} {r.text[:200]}")
                    continue
                with stats.lock:
                    stats.latencies.append(dt)
                hits = r.json()["hits"]
                if check and check[0] == "stable":
                    if not hits or not hits[0]["path"].endswith(f"s{check[1]:03d}.md"):
                        stats.bad(f"stable file s{check[1]:03d} not first: {[h['path'] for h in hits][:3]}")
                elif check and check[0] == "churn":
                    n = len(hits)
                    if n:
                        m = re.search(r"# Churn \d+ v(\d+)", " ".join(h["text"] for h in hits))
                        heads = {int(x) for x in re.findall(r"# Churn \d+ v(\d+)", " ".join(h["text"] for h in hits))}
                        if len(heads) > 1:
                            stats.bad(f"churn c{check[1]:03d}: chunks of versions {sorted(heads)} together")
                        if m:
                            with stats.lock:
                                stats.churn_counts[f"{check[1]}:v{m.group(1)}"].add(n)
                elif check and check[0] == "group":
                    if len(hits) not in (0, 4):
                        stats.bad(f"group {check[1]}: {len(hits)} of 4 documents")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        threads += [threading.Thread(target=indexer), threading.Thread(target=api_writer)]
        start = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - start < args.seconds and not stop.is_set():
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(300)
        elapsed = time.monotonic() - start
        for key, counts in stats.churn_counts.items():
            if len(counts) > 1:
                stats.bad(f"churn {key}: seen with {sorted(counts)} chunks (a version must always have one count)")
        info = http.get("/info").json()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    lat = [x * 1000 for x in stats.latencies]
    result = {
        "clients": args.clients, "seconds": round(elapsed, 1), "searches": len(lat),
        "searches_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1), "p99_ms": round(pct(lat, 99), 1),
        "max_ms": round(max(lat), 1) if lat else None,
        "index_runs": index_runs[0], "api_batches": api_batches[0],
        "write_p50_ms": round(pct([x * 1000 for x in stats.write_latencies], 50), 1),
        "errors": len(stats.errors), "inconsistent": len(stats.inconsistent),
        "index_chunks_at_end": info.get("chunks"), "index_documents_at_end": info.get("documents"),
        "server_exit": server.returncode,
    }
    print(json.dumps(result, indent=2))
    for e in (stats.errors + stats.inconsistent)[:20]:
        print("  ", e)
    if args.write_docs:
        write_docs(args.write_docs, result, args)
    return 0 if not stats.errors and not stats.inconsistent else 1


def write_docs(path: Path, r: dict, args) -> None:
    cmd = (f"python scripts/load_test.py --clients {args.clients} --seconds {args.seconds:g} --stable {args.stable} "
           f"--churn {args.churn} --readers {args.readers} --write-docs {path}")
    section = f"""<!-- load_test:start -->
## HTTP server under load (`scripts/load_test.py`)

Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPU cores (shared machine, load
generator and server on the same cores), Python {platform.python_version()}, default model, loopback HTTP.

    {cmd}

{r['clients']} concurrent search clients for {r['seconds']} s (queries in hybrid, dense and keyword mode, k = 10),
while an incremental index run re-indexed a folder of {args.stable} stable and up to {args.churn} changing files
{r['index_runs']} times (files added, changed and deleted between runs) and the API added and deleted
{r['api_batches']} batches of 4 documents.

| searches | searches/s | p50 ms | p95 ms | p99 ms | max ms | errors | inconsistent results |
|---:|---:|---:|---:|---:|---:|---:|---:|
| {r['searches']} | {r['searches_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['errors']} | {r['inconsistent']} |

"Inconsistent" counts a stable file not ranked first for its own unique word, a churn file seen with part of
its chunks (or chunks of two versions at once), and an API batch seen with 1–3 of its 4 documents. Latency is
per request as the client sees it, queueing included (the server runs {args.readers} searches at a time).
Write requests (index runs and document batches) took {r['write_p50_ms']} ms at the median.
<!-- load_test:end -->"""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if "<!-- load_test:start -->" in text:
        text = re.sub(r"<!-- load_test:start -->.*?<!-- load_test:end -->", lambda m: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
