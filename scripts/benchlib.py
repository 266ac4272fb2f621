"""Helpers shared by the benchmark scripts in this folder (imported as ``benchlib``).

Why this exists: ``eval_files.py`` and ``bench_index.py`` both need to read a test collection
(loaded with ``searcher.search.evaluation.load_collection``, which also holds the trec_eval metrics),
turn its documents into files the way a user's folder would look, and write their results into a
delimited section of docs/benchmarks.md. Keeping that in one place means the scripts measure the
same corpus files and report in the same format.

Only the standard library and ``searcher.search.evaluation`` (itself standard-library only) are imported
here, so a script that times a child process can import this module without paying for torch.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, unquote

from searcher.search.evaluation import Collection


# ---- documents as files ---------------------------------------------------------------------------
def doc_filename(doc_id: str) -> str:
    """File name for a document id; ids are percent-quoted so any id makes one safe file name."""
    return quote(doc_id, safe="") + ".txt"


def doc_id_from_path(path: str | Path) -> str:
    """The document id back from a file path (the file stem, unquoted)."""
    return unquote(Path(path).stem)


def default_docs_folder(collection: Collection) -> Path:
    """A stable temporary folder for a collection's files, so that repeated runs find the same
    paths and mtimes and an existing index is brought up to date without re-embedding."""
    return Path(tempfile.gettempdir()) / f"searcher-docs-{collection.name}"


def write_documents(collection: Collection, folder: str | Path) -> dict[str, Path]:
    """Write each document as ``<folder>/<id>.txt``; returns doc id -> path.

    Documents whose title and text are both empty are skipped. A file whose content is already
    right is not rewritten (its mtime stays, so an incremental re-index has nothing to do), and
    ``.txt`` files that are not in the collection are deleted."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for doc_id, content in collection.corpus:   # title, blank line, text; empty documents already left out
        path = out / doc_filename(doc_id)
        data = content.encode("utf-8")
        try:
            same = path.read_bytes() == data
        except FileNotFoundError:
            same = False
        if not same:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        written[doc_id] = path
    keep = {p.name for p in written.values()}
    for p in out.glob("*.txt"):
        if p.name not in keep:
            p.unlink()
    return written


# ---- docs/benchmarks.md -----------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(module: str) -> str:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
        return "not installed"


def machine_line() -> str:
    """One line naming the machine and the versions that matter for speed and scores."""
    return (f"{_cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"torch {_version('torch')}, sentence-transformers {_version('sentence-transformers')}, "
            f"faiss-cpu {_version('faiss-cpu')}; {_dt.date.today().isoformat()}")


def code_version(repo: str | Path) -> str:
    """Which ``searcher`` code was measured: the package folder that imports resolve to and, when
    it is this checkout, its commit and whether ``searcher/`` had uncommitted changes."""
    import importlib.util
    import subprocess

    spec = importlib.util.find_spec("searcher")
    pkg = Path(spec.origin).resolve().parent if spec and spec.origin else None
    root = Path(repo).resolve()

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    if pkg is None:
        return "searcher not importable"
    if pkg != root / "searcher":
        return f"searcher imported from {pkg}"
    head = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "searcher")
    return f"this checkout at commit {head}" + (" + uncommitted changes in searcher/" if dirty else "")


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command as typed, with PYTHONPATH in front when it is set (it picks the code measured)."""
    import shlex

    env = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} " if os.environ.get("PYTHONPATH") else ""
    return env + shlex.join(["python", script, *argv])


def write_section(path: str | Path, name: str, body: str) -> None:
    """Replace the section between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``,
    or append it if absent; the file is created with a ``# Benchmarks`` header if missing."""
    file = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if file.exists():
        current = file.read_text(encoding="utf-8")
    else:
        current = ("# Benchmarks\n\nNumbers measured with the scripts in `scripts/`; each section says the "
                   f"command that wrote it.\n\nMachine: {machine_line()}.\n")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(current):
        new = pattern.sub(lambda _: block, current, count=1)
    else:
        new = current.rstrip("\n") + "\n\n" + block + "\n"
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, file)


# ---- a large corpus of short real texts -----------------------------------------------------------
SCALE_SOURCES = ("/work/shared/data/scifact/corpus.jsonl.gz", "/work/shared/data/cranfield/corpus.jsonl.gz")


def scale_texts(count: int, doc_root: str | Path = "/usr/share/doc") -> list[str]:
    """``count`` distinct real sentences (20+ characters), deterministic: the sentences of the
    test collections first, then those of the text files under ``doc_root`` in sorted order.

    Why sentences: embedding 100k passages of 200 tokens takes hours on this machine, 100k
    sentences take minutes, and for speed and recall of the vector index only the count of real
    vectors matters."""
    import gzip
    import json

    from searcher.ingest.chunking import sentences

    out: list[str] = []
    seen: set[str] = set()

    def take(text: str) -> bool:
        for a, b in sentences(text, 0, len(text)):
            s = " ".join(text[a:b].split())
            if len(s) >= 20 and s not in seen:
                seen.add(s)
                out.append(s)
                if len(out) >= count:
                    return True
        return False

    for source in SCALE_SOURCES:
        with gzip.open(source, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                if take(f"{d.get('title') or ''}. {d.get('text') or ''}"):
                    return out
    for path in sorted(Path(doc_root).rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue
        if "\0" not in text and take(text):
            return out
    raise SystemExit(f"only {len(out)} sentences found, {count} asked for")
