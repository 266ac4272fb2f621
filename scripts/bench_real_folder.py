#!/usr/bin/env python
"""Index a real multi-format folder and record how it went in docs/benchmarks.md.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_real_folder.py [FOLDER ...] [--scan TREE]
                                                                   [--index DIR] [--no-write]

FOLDERs (default /usr/share/doc, the documentation the system's packages install: HTML, text,
Markdown, reStructuredText, gzip-compressed changelogs, a few PDFs, and files of other types)
are indexed in turn, in place, into one fresh index (a temporary folder unless --index is
given) with the real ``Searcher.index``; then the same runs are repeated with nothing changed.
``--scan TREE`` also reads a whole tree with the real walk, readers and chunker (the model's
tokenizer, no embedding): files/s of the reading stage alone and skipped-by-reason for every
file, for a tree too big to embed on a small CPU in one sitting.
Results go into the section of docs/benchmarks.md between ``<!-- real_folder:start -->`` and
``<!-- real_folder:end -->`` (other sections are left alone).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

START, END = "<!-- real_folder:start -->", "<!-- real_folder:end -->"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    load = ""
    try:
        load = f", load average at start {os.getloadavg()[0]:.1f}"
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}{load}; Python {platform.python_version()}, {platform.system()}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("torch", "sentence-transformers", "faiss-cpu", "pypdf", "python-docx", "lxml",
                 "markdown-it-py", "charset-normalizer"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def folder_stats(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files += 1
                size += os.path.getsize(p)
    return files, size


def scan(tree: Path, s) -> list[str]:
    """Walk, read, extract and chunk a whole tree as an index run would, without embedding."""
    from collections import Counter

    from searcher.ingest.chunking import chunk_document
    from searcher.ingest.walk import FileEntry, Unreadable, WalkOptions, read_document, walk

    encoder = s._encoder_for(s._read_config())
    config = s._read_config().chunking
    print(f"scanning {tree}", file=sys.stderr)
    t0 = time.monotonic()
    options = WalkOptions()
    kinds: Counter = Counter()
    chunks: Counter = Counter()
    reasons: Counter = Counter()
    failed = read_bytes = 0
    read_time = chunk_time = 0.0
    for e in walk(tree, options):
        if not isinstance(e, FileEntry):
            reasons[e.reason.split(":")[0]] += 1
            failed += e.failed
            continue
        t1 = time.monotonic()
        try:
            doc = read_document(e, options.max_bytes)
        except Unreadable as exc:
            reasons[exc.reason.split(":")[0]] += 1
            failed += 1
            continue
        finally:
            read_time += time.monotonic() - t1
        t1 = time.monotonic()
        n = len(chunk_document(doc.text, doc.blocks, encoder.token_spans, config, hard_pages=doc.page_unit == "page"))
        chunk_time += time.monotonic() - t1
        kinds[e.kind] += 1
        chunks[e.kind] += n
        read_bytes += e.size
    total = time.monotonic() - t0
    n_read = sum(kinds.values())
    return [
        "",
        f"### Reading the whole tree without embedding: `{tree}`",
        "",
        "Walk, read, decode/extract and chunk (with the model's tokenizer) every file, as an index run "
        "does, but embed nothing — how fast the reading stage is, and what the whole tree holds.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| files read | {n_read} ({read_bytes / 2**20:.1f} MiB on disk) in {total:.1f} s |",
        f"| **files/s**, reading stage | **{n_read / total:.1f}** (reading and extraction {read_time:.1f} s, "
        f"chunking {chunk_time:.1f} s) |",
        f"| chunks it would embed | {sum(chunks.values())} |",
        f"| skipped | {sum(reasons.values())} (of which {failed} failed) |",
        "",
        "| type | files | chunks |",
        "|---|---:|---:|",
        *[f"| {k} | {kinds[k]} | {chunks[k]} |" for k in sorted(kinds)],
        "",
        "| skipped because | files |",
        "|---|---:|",
        *[f"| {r} | {n} |" for r, n in reasons.most_common()],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="*", default=["/usr/share/doc"])
    ap.add_argument("--scan", help="also read and chunk this whole tree without embedding")
    ap.add_argument("--index", help="index folder (default: a fresh temporary folder)")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not edit docs/benchmarks.md")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from searcher import Searcher

    folders = [Path(f).resolve() for f in args.folders]
    folder = Path(os.path.commonpath(folders)) if len(folders) > 1 else folders[0]
    idx = Path(args.index) if args.index else Path(tempfile.mkdtemp(prefix="searcher-bench-")) / "idx"
    n_files = n_bytes = 0
    for f in folders:
        a, b = folder_stats(f)
        n_files, n_bytes = n_files + a, n_bytes + b
    command = "HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_real_folder.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    print(f"indexing {len(folders)} folder(s) ({n_files} files, {n_bytes / 2**20:.0f} MiB) into {idx}", file=sys.stderr)
    s = Searcher(idx)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  {done}/{total} files read", file=sys.stderr)

    from searcher.records import IndexReport

    t0 = time.monotonic()
    reports = [s.index(f, progress=progress) for f in folders]
    full = time.monotonic() - t0
    report = IndexReport(tuple(x for r in reports for x in r.files), full)
    t0 = time.monotonic()
    again = IndexReport(tuple(x for f in folders for x in s.index(f).files), 0)
    rerun = time.monotonic() - t0
    info = s.info()
    summary = report.summary()
    read = summary["added"]
    read_bytes = sum(os.path.getsize(f.path) for f in report.files
                     if f.status == "added" and os.path.exists(f.path))
    queries = ["how to configure logging", "license terms for redistribution", "security vulnerability fixed",
               "xpath expression evaluation", "install a package from a requirements file"]
    sample = []
    for q in queries:
        t0 = time.monotonic()
        hits = s.search(q, k=3)
        ms = (time.monotonic() - t0) * 1000
        sample.append((q, ms, [f"`{os.path.relpath(h.path, folder)}{h.location()}`" for h in hits]))
    scan_lines = scan(Path(args.scan).resolve(), s) if args.scan else []
    if scan_lines:
        would = int(re.search(r"\| chunks it would embed \| (\d+) \|", "\n".join(scan_lines)).group(1))
        scan_lines += ["", f"Embedding is the bottleneck: at the {info['chunks'] / full:.1f} chunks/s measured above, "
                       f"the whole tree's {would} chunks would take about {would / (info['chunks'] / full) / 3600:.1f} "
                       "hours on this machine, against minutes for reading them."]

    lines = [
        START,
        "## Real folder: indexing a system's documentation tree",
        "",
        f"- **Date:** {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- **Machine:** {machine()}",
        f"- **Software:** {versions()}; model {info['model']['name']} "
        f"(chunks ≤ {info['chunking']['max_tokens']} tokens, overlap {info['chunking']['overlap_tokens']})",
        f"- **Command:** `{command}` (written by that script)",
        f"- **Folders indexed:** {', '.join(f'`{f}`' for f in folders)}: {n_files} files, "
        f"{n_bytes / 2**20:.1f} MiB",
        "",
        "| measure | value |",
        "|---|---|",
        f"| full run | {full:.1f} s |",
        f"| files read and indexed | {read} ({read_bytes / 2**20:.1f} MiB) |",
        f"| **files/s** (files indexed ÷ full run) | **{read / full:.2f}** |",
        f"| MiB/s (bytes of the files indexed ÷ full run) | {read_bytes / 2**20 / full:.3f} |",
        f"| chunks | {info['chunks']} ({info['vectors']} distinct texts embedded) |",
        f"| chunks/s | {info['chunks'] / full:.1f} |",
        f"| files skipped | {summary['skipped']} (of which {summary['failed']} failed: a type we read, "
        "but could not) |",
        f"| second run, nothing changed | {rerun:.1f} s ({again.count('unchanged')} unchanged) |",
        f"| index size on disk | {info['disk_bytes'] / 2**20:.1f} MiB |",
        "",
        "Per type (files read in the full run, their chunks, files that failed):",
        "",
        "| type | files | chunks | failed |",
        "|---|---:|---:|---:|",
        *[f"| {k} | {v['read']} | {v['chunks']} | {v['failed']} |" for k, v in summary["by_type"].items()],
        "",
        "Skipped, by reason:",
        "",
        "| reason | files |",
        "|---|---:|",
        *[f"| {r} | {n} |" for r, n in sorted(summary["skipped_reasons"].items(), key=lambda x: -x[1])],
        "",
        "Failed files (first 15):",
        "",
        *([f"- `{os.path.relpath(f.path, folder)}`: {f.reason}" for f in report.failures[:15]] or ["- none"]),
        "",
        "Sample searches (top 3, with the time of a warm search):",
        "",
        *[f"- \"{q}\" ({ms:.0f} ms): {', '.join(h)}" for q, ms, h in sample],
        *scan_lines,
        END,
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.no_write:
        return
    bench = REPO / "docs" / "benchmarks.md"
    text = bench.read_text(encoding="utf-8") if bench.exists() else "# Benchmarks\n\n"
    if START in text and END in text:
        a, b = text.index(START), text.index(END) + len(END)
        text = text[:a] + section.rstrip("\n") + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    bench.write_text(text, encoding="utf-8")
    print(f"wrote {bench}", file=sys.stderr)


if __name__ == "__main__":
    main()
