"""Helpers shared by the evaluation and benchmark scripts in this folder.

Why this exists: ``eval_files.py`` and ``bench_index.py`` both need to read a test collection
(the BEIR-like layout described in /work/shared/data/README.md), turn its documents into files the
way a user's folder would look, score rankings the way trec_eval does, and write their results
into a delimited section of docs/benchmarks.md. Keeping that in one place means both scripts
measure the same corpus files and report in the same format.

Only the standard library is imported here, so a script that times a child process can import
this module without paying for numpy or torch.

Note: CPython has a built-in module named ``_collections``, which always wins over a file on
``sys.path``; the scripts therefore load this file by path (``importlib.util``), not by
``import _collections``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import gzip
import json
import math
import os
import platform
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

Qrels = dict[str, dict[str, int]]          # query id -> {doc id -> grade}; grade > 0 is relevant


@dataclass(frozen=True)
class Collection:
    """A test collection: documents, queries and graded relevance judgments."""

    name: str
    corpus: dict[str, tuple[str, str]]     # doc id -> (title, text), in file order
    queries: dict[str, str]                # query id -> text, in file order
    qrels: Qrels                           # every judged pair, including grade-0 rows


def _read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_collection(folder: str | Path) -> Collection:
    """Read ``corpus.jsonl.gz``, ``queries.jsonl.gz`` and ``qrels.tsv`` from ``folder``."""
    root = Path(folder)
    corpus = {str(d["_id"]): (d.get("title") or "", d.get("text") or "")
              for d in _read_jsonl_gz(root / "corpus.jsonl.gz")}
    queries = {str(q["_id"]): q["text"] for q in _read_jsonl_gz(root / "queries.jsonl.gz")}
    qrels: Qrels = {}
    with open(root / "qrels.tsv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        if [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise ValueError(f"{root / 'qrels.tsv'}: unexpected header {header}")
        for row in reader:
            if row:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return Collection(root.resolve().name, corpus, queries, qrels)


# ---- documents as files ---------------------------------------------------------------------------
def doc_filename(doc_id: str) -> str:
    """File name for a document id; ids are percent-quoted so any id makes one safe file name."""
    return quote(doc_id, safe="") + ".txt"


def doc_id_from_path(path: str | Path) -> str:
    """The document id back from a file path (the file stem, unquoted)."""
    return unquote(Path(path).stem)


def doc_text(title: str, text: str) -> str:
    """A document's file content: title, a blank line, then the text (an empty part is left out)."""
    return "\n\n".join(part for part in (title.strip(), text.strip()) if part)


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
    for doc_id, (title, text) in collection.corpus.items():
        content = doc_text(title, text)
        if not content:
            continue
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


# ---- metrics (trec_eval definitions) ----------------------------------------------------------------
def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """nDCG@k as trec_eval's ``ndcg_cut.k``: gain = grade (linear), discount 1/log2(rank + 1),
    the ideal ranking made of all judged relevant documents sorted by grade."""
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if judged.get(d, 0) > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """Share of the relevant (grade > 0) documents found in the top ``k``."""
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document in the top ``k``, else 0."""
    for i, d in enumerate(ranking[:k]):
        if judged.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between order statistics."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


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
