"""The ``searcher`` command: a thin typer layer over ``Searcher``.

Human output by default, ``--json`` for programs (one JSON object per line); errors are one
line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from typer.core import TyperCommand

from ..errors import SearcherError
from . import output

app = typer.Typer(
    help="Index a folder of your documents and search it by meaning, locally.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,   # plain help: switches without a type, -k before --top, words wrapped whole
    context_settings={"help_option_names": ["-h", "--help"]},
)
T = TypeVar("T")


class _Command(TyperCommand):
    """Usage lines as click writes them: ``searcher index [OPTIONS] FOLDER``, not ``{FOLDER}``."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [re.sub(r"^\{(.*?)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]


IndexOpt = Annotated[Optional[Path], typer.Option(
    "--index", "-i", help="Index folder to use (default: the index named by --name).", show_default=False, metavar="PATH")]
NameOpt = Annotated[str, typer.Option(
    "--name", "-n", help="Name of an index under the default indexes folder ($SEARCHER_INDEXES, or the "
    "repository's indexes/).", metavar="NAME")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="sentence-transformers model name or local path, 'static' (a token table distilled "
    "once from the default model: far faster indexing, lower quality; docs/static.md) or a Model2Vec folder "
    "(default: the model that built the index; for a new index all-MiniLM-L6-v2, shipped offline).",
    show_default=False, metavar="MODEL")]
PrecisionOpt = Annotated[Optional[str], typer.Option(
    help="Encoder arithmetic: float32 (default) or int8 (about 2x faster indexing, slightly lower quality; "
    "see docs/benchmarks.md). Fixed when the index is created.", show_default=False, metavar="float32|int8")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of text.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary.")]


class ProgressChoice(str, Enum):
    auto = "auto"
    bar = "bar"
    plain = "plain"
    none = "none"


ProgressOpt = Annotated[ProgressChoice, typer.Option(
    "--progress", help="auto: a bar on a terminal, else a plain line every few seconds (logs, pipes); or "
    "bar, plain, none.")]


class StoreChoice(str, Enum):
    faiss = "faiss"
    milvus = "milvus"


MilvusUriOpt = Annotated[Optional[str], typer.Option(
    help="Milvus to keep the vectors in: a milvus-lite file (vectors.db), http://HOST:19530, or a cluster's "
    "address (https:// for TLS).", show_default=False, metavar="URI")]
MilvusCollectionOpt = Annotated[Optional[str], typer.Option(
    help="Milvus collection for this index's vectors (default: a new searcher_<id>).", show_default=False, metavar="NAME")]
MilvusIndexOpt = Annotated[Optional[str], typer.Option(
    help="Milvus index type: FLAT (exact), HNSW, IVF_FLAT or AUTOINDEX (default: FLAT on milvus-lite, HNSW on "
    "a server).", show_default=False, metavar="TYPE")]
MilvusTokenOpt = Annotated[Optional[str], typer.Option(
    envvar="SEARCHER_MILVUS_TOKEN", help="Milvus token ('user:password' or an API key); never written to the "
    "index. Searches read $SEARCHER_MILVUS_TOKEN.", show_default=False, metavar="TOKEN")]
MilvusCaOpt = Annotated[Optional[Path], typer.Option(
    help="TLS: PEM file of the Milvus server's certificate or its CA (turns TLS on).", show_default=False, metavar="PEM")]
MilvusServerNameOpt = Annotated[Optional[str], typer.Option(
    help="TLS: the name the Milvus server's certificate was issued for.", show_default=False, metavar="NAME")]


def _store_config(kind: StoreChoice | None, uri: str | None, collection: str | None, index_type: str | None,
                  ca: Path | None, server_name: str | None):
    """The vector store the options ask for (``--milvus-uri`` alone means Milvus), or None for no choice."""
    from ..store.protocol import VectorStoreConfig, milvus_config

    if kind is None and uri is None:
        return None
    if kind is StoreChoice.faiss:
        if uri is not None:
            raise SearcherError("--milvus-uri goes with --vector-store milvus, not faiss")
        return VectorStoreConfig()
    return milvus_config(uri, collection, index_type, str(ca) if ca else None, server_name)


def _searcher(index: Path | None, name: str, model: str | None = None, **kw: Any):
    from ..api import Searcher, default_index_root

    if not re.fullmatch(r"[\w.-]+", name) or name in (".", ".."):
        raise SearcherError(f"--name '{name}': use letters, digits, '.', '-' or '_' only")
    return Searcher(index if index is not None else default_index_root() / name, model=model, **kw)


def _run(action: Callable[[], T]) -> T:
    """Turn expected failures into one line on stderr and an exit status."""
    try:
        return action()
    except SearcherError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: the index keeps every batch committed before the interrupt; "
                   "run the same command again to finish", err=True)
        raise typer.Exit(130) from None


def _parse_size(text: str, option: str = "--max-file-size") -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", text.lower())
    if not m:
        raise SearcherError(f"{option} '{text}': give a size such as 500000, 800KB or 20MB")
    unit = (m.group(2) or "").rstrip("b").rstrip("i")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(unit or " "))


class AnnChoice(str, Enum):
    auto = "auto"
    flat = "flat"
    hnsw = "hnsw"
    ivf = "ivf"
    ivfpq = "ivfpq"


class DtypeChoice(str, Enum):
    float32 = "float32"
    float16 = "float16"
    int8 = "int8"


ExtOpt = Annotated[Optional[list[str]], typer.Option(
    "--ext", help="Also read as plain text the files with this extension or name: --ext .dat, --ext RBASH, "
    "--ext 'notes-*' (repeatable). Files whose name gives no type are read anyway when their content is "
    "text; this is for names of binary types (.bin, .db...) that hold text.", metavar="SUFFIX|NAME")]
MaxFileSizeOpt = Annotated[str, typer.Option(help="Skip files larger than this.", metavar="SIZE")]
HiddenOpt = Annotated[bool, typer.Option("--hidden", help="Also read hidden files and folders.")]
NoIgnoreOpt = Annotated[bool, typer.Option("--no-ignore", help="Do not honour .gitignore and .searcherignore files.")]


def _walk_options(ext: list[str] | None, max_file_size: str, hidden: bool, no_ignore: bool):
    """What to read of a folder, from the options ``index`` and ``watch`` share."""
    from ..ingest.walk import WalkOptions

    return WalkOptions(max_bytes=_parse_size(max_file_size), hidden=hidden, ignore_files=not no_ignore).reading(ext or [])


@app.command(cls=_Command)
def index(
    folder: Annotated[Path, typer.Argument(help="Folder (or single file) to index.", metavar="FOLDER", show_default=False)],
    index: IndexOpt = None, name: NameOpt = "default", model: ModelOpt = None,
    chunk_tokens: Annotated[Optional[int], typer.Option(
        help="Largest chunk, in model tokens (default: the most the model reads). Fixed when the index is "
        "created.", show_default=False, metavar="N")] = None,
    overlap: Annotated[Optional[int], typer.Option(
        help="Tokens of whole sentences repeated between neighbouring chunks (default 32). Fixed when the "
        "index is created.", show_default=False, metavar="N")] = None,
    ext: ExtOpt = None, max_file_size: MaxFileSizeOpt = "10MB", hidden: HiddenOpt = False,
    no_ignore: NoIgnoreOpt = False,
    batch_size: Annotated[int, typer.Option(
        help="Chunks per encoder batch (torch; ONNX Runtime runs a batch in calls of at most 8).", metavar="N")] = 32,
    precision: PrecisionOpt = None,
    ann: Annotated[Optional[AnnChoice], typer.Option(
        help="Vector search structure: auto (exact up to 50,000 chunks, then HNSW, or IVF when the memory "
        "budget requires), or force flat, hnsw, ivf, ivfpq. Kept for later runs.", show_default=False)] = None,
    vector_dtype: Annotated[Optional[DtypeChoice], typer.Option(
        help="Store vectors as float32 (default), float16 (half the bytes) or int8 (a quarter). Fixed when the "
        "index is created.", show_default=False)] = None,
    memory_budget: Annotated[Optional[str], typer.Option(
        help="RAM the vector structure may use, e.g. 2GB (default: half of this machine's). Kept for later runs.",
        show_default=False, metavar="SIZE")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Make any file that could not be read an error (exit 1, listing them).")] = False,
    vector_store: Annotated[Optional[StoreChoice], typer.Option(
        help="Where a new index keeps its vectors: faiss (a file in the index folder, the default) or milvus. "
        "Fixed at creation; `searcher migrate` moves them.", show_default=False)] = None,
    milvus_uri: MilvusUriOpt = None, milvus_collection: MilvusCollectionOpt = None,
    milvus_index: MilvusIndexOpt = None, milvus_token: MilvusTokenOpt = None, milvus_ca: MilvusCaOpt = None,
    milvus_server_name: MilvusServerNameOpt = None,
    ray_address: Annotated[Optional[str], typer.Option(
        help="Embed on a Ray cluster: auto (the cluster this machine belongs to), ray://HEAD:10001, or local "
        "(start one here).", show_default=False, metavar="ADDRESS")] = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False, progress_choice: ProgressOpt = ProgressChoice.auto,
) -> None:
    """Index a folder: add new files, re-embed only changed text, drop deleted files.

    Exit status: 0 when every file of a type searcher reads was indexed, 3 when some could not be
    read (each is listed with its reason; the rest is indexed), 1 on an error or, with --strict,
    when any file could not be read. Files of other types (images...) are listed, not counted."""
    def go() -> None:
        options = _walk_options(ext, max_file_size, hidden, no_ignore)
        store = _store_config(vector_store, milvus_uri, milvus_collection, milvus_index, milvus_ca,
                              milvus_server_name)
        s = _searcher(index, name, model, chunk_tokens=chunk_tokens, overlap_tokens=overlap,
                      batch_size=batch_size, vector_store=store, milvus_token=milvus_token, ray_address=ray_address,
                      precision=precision, ann=ann.value if ann else None,
                      vector_dtype=vector_dtype.value if vector_dtype else None, memory_budget=memory_budget)
        with output.progress(output.progress_style(progress_choice.value, quiet)) as progress:
            report = s.index(folder, options=options, progress=progress)
        if json_out:
            for f in report.files:
                typer.echo(output.json_line(f.to_dict()))
            typer.echo(output.json_line({"summary": report.summary()}))
        elif not quiet:
            output.print_summary(report, s.path)
        return report
    report = _run(go)
    if report.failures:
        if strict:
            typer.echo(f"error: {len(report.failures)} file{'s' * (len(report.failures) != 1)} could not be "
                       "indexed (--strict):", err=True)
            for f in report.failures:
                typer.echo(f"  {output.display(f.path)}: {f.reason}", err=True)
            raise typer.Exit(1)
        raise typer.Exit(3)


class ModeChoice(str, Enum):
    hybrid = "hybrid"
    dense = "dense"
    keyword = "keyword"


class FusionChoice(str, Enum):
    zscore = "zscore"
    rrf = "rrf"


FusionOpt = Annotated[FusionChoice, typer.Option(
    help="hybrid mode: zscore (weighted sum of standardised scores) or rrf (reciprocal rank fusion).")]
FeedbackOpt = Annotated[bool, typer.Option(
    "--feedback/--no-feedback", help="hybrid mode: move the dense query towards the best first-pass results.")]


PathOpt = Annotated[Optional[str], typer.Option(
    help="Only files whose path matches this glob, e.g. 'docs/*.md' ('*' crosses folders).", show_default=False,
    metavar="GLOB")]
TypeOpt = Annotated[Optional[list[str]], typer.Option(
    "--type", "-t", help="Only files with this extension, e.g. -t md -t py (repeatable).", show_default=False,
    metavar="EXT")]
SinceOpt = Annotated[Optional[str], typer.Option(
    help="Only documents modified at or after this date: 2026-01-31, 2026-01-31T12:00 or 7d / 12h / 2w ago.",
    show_default=False, metavar="WHEN")]
BeforeOpt = Annotated[Optional[str], typer.Option(
    help="Only documents modified before this date (same forms as --since).", show_default=False, metavar="WHEN")]
MetaOpt = Annotated[Optional[list[str]], typer.Option(
    help="Only documents whose metadata has KEY=VALUE (repeatable; VALUE read as JSON when it parses).",
    show_default=False, metavar="KEY=VALUE")]


def _filters(path: str | None, types: list[str] | None, since: str | None, before: str | None,
             meta: list[str] | None):
    from ..records import Filters

    return Filters(path=path, types=tuple(types or ()), modified_after=_parse_when(since, "--since"),
                   modified_before=_parse_when(before, "--before"), metadata=_parse_meta(meta or []))


@app.command(cls=_Command)
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words.", metavar="QUERY", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--top", help="Number of results.", metavar="N")] = 10,
    mode: Annotated[ModeChoice, typer.Option(
        help="hybrid: meaning and keywords fused; dense: meaning only; keyword: BM25 only.")] = ModeChoice.hybrid,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None,
    group_by_file: Annotated[bool, typer.Option(
        "--group-by-file", help="Show each file once, with its best-matching chunk.")] = False,
    min_score: Annotated[Optional[float], typer.Option(
        help="Drop hits scoring below this (hybrid: 0..1, dense: cosine, keyword: BM25).",
        show_default=False, metavar="SCORE")] = None,
    rerank: Annotated[Optional[str], typer.Option(
        help="Re-score the top candidates with this sentence-transformers CrossEncoder (name or path).",
        show_default=False, metavar="MODEL")] = None,
    fusion: FusionOpt = FusionChoice.zscore, feedback: FeedbackOpt = True,
    index: IndexOpt = None, name: NameOpt = "default", model: ModelOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search an index: rank, score, path:line and a snippet per hit (or JSON lines).

    The score depends on the mode. hybrid (default): 0..1, how close the hit comes to a chunk that
    every leg (meaning, keywords, exact phrase, rare words) ranks first for this query; 1 = first
    in every leg. dense: cosine similarity of query and chunk (-1..1). keyword: BM25 (0 and up).
    --json also gives each hit's raw scores: fused, dense (cosine) and keyword (BM25)."""
    from ..search.snippets import make_snippet

    def go() -> None:
        hits = _searcher(index, name, model).search(query, k=k, mode=mode.value,
                                                     filters=_filters(path, type_, since, before, meta),
                                                     group_by_file=group_by_file, min_score=min_score, rerank=rerank,
                                                     fusion=fusion.value, feedback=feedback)
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        for rank, h in enumerate(hits, 1):
            if json_out:
                typer.echo(output.json_line({"rank": rank, **h.to_dict()}))
                continue
            typer.echo(f"{rank:>3}  {h.score:.3f}  {output.where(h)}")
            snip = make_snippet(h.text, query)
            typer.echo(f"     {output.marked(snip.text, snip.marks) if color else h.snippet}")
            if h.also:
                typer.echo(f"     also in: {', '.join(output.where(p) for p in h.also)}")
        if not hits and not json_out:
            typer.echo("no results", err=True)
    _run(go)


def _parse_when(text: str | None, option: str) -> float | None:
    """A date, a date and time (local time), or an age such as 7d / 12h / 2w / 30m, as POSIX seconds."""
    if text is None:
        return None
    import datetime as dt
    import time

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text.lower())
    if m:
        return time.time() - float(m.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise SearcherError(f"{option} '{text}': give a date like 2026-01-31, 2026-01-31T12:00, or an age "
                            "like 7d, 12h, 2w") from None


def _parse_meta(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SearcherError(f"--meta '{pair}': write KEY=VALUE, e.g. --meta team=infra")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(key, []).append(parsed)
    return {key: v[0] if len(v) == 1 else v for key, v in out.items()}


@app.command("eval", cls=_Command)
def eval_(
    collection: Annotated[Path, typer.Argument(
        help="Folder with corpus.jsonl[.gz] ({_id, title, text} per line), queries.jsonl[.gz] ({_id, text}) and "
        "qrels.tsv (query-id, corpus-id, score; header line).", metavar="COLLECTION", show_default=False)],
    mode: Annotated[str, typer.Option(help="dense, keyword, hybrid, or all (side by side).", metavar="MODE")] = "hybrid",
    index: IndexOpt = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", "-n", help="Index name (default: eval-<collection folder name>); reused when it exists.",
        show_default=False, metavar="NAME")] = None,
    fusion: FusionOpt = FusionChoice.zscore, feedback: FeedbackOpt = True,
    model: ModelOpt = None, precision: PrecisionOpt = None, json_out: JsonOpt = False, quiet: QuietOpt = False,
    progress_choice: ProgressOpt = ProgressChoice.auto,
) -> None:
    """Measure search quality on a test collection: nDCG@10, Recall@100, MRR@10, query latency."""
    from ..search.query import MODES

    def go() -> None:
        modes = MODES if mode == "all" else (mode,)
        if any(m not in MODES for m in modes):
            raise SearcherError(f"--mode '{mode}': choose dense, keyword, hybrid or all")
        s = _searcher(index, name or f"eval-{collection.resolve().name}", model, precision=precision)
        with output.progress(output.progress_style(progress_choice.value, quiet)) as progress:
            results = s.evaluate(collection, modes, progress=progress, fusion=fusion.value, feedback=feedback)
        if json_out:
            for m, r in results.items():
                typer.echo(json.dumps({"collection": str(collection), "mode": m, **r}))
            return
        typer.echo(f"{'mode':<8} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}  queries")
        for m, r in results.items():
            typer.echo(f"{m:<8} {r['ndcg@10']:>8.4f} {r['recall@100']:>7.4f} {r['mrr@10']:>7.4f} "
                       f"{r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f}  {r['queries']}")
    _run(go)


@app.command(cls=_Command)
def info(index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
         files: Annotated[bool, typer.Option(
             "--files", help="List the indexed files and the files skipped, with the reason.")] = False) -> None:
    """Show what an index holds: files, chunks, model, index type and size on disk."""
    def go() -> None:
        s = _searcher(index, name)
        data = s.info()
        if files:
            data |= s.files()
        if json_out:
            typer.echo(output.json_line(data))
            return
        if files:
            output.print_files(data)
            return
        m = data["model"]
        typer.echo(f"index:      {data['index']}")
        typer.echo(f"documents:  {data['documents']} ({data['files']} files)")
        typer.echo(f"chunks:     {data['chunks']} ({data['vectors']} distinct vectors)")
        typer.echo(f"model:      {m['name']} (dim {m['dim']}, max {m['max_seq_length']} tokens, "
                   f"weights {m['fingerprint'][:12]})")
        typer.echo(f"chunking:   ≤ {data['chunking']['max_tokens']} tokens, "
                   f"{data['chunking']['overlap_tokens']} overlap")
        detail = data["ann_detail"]
        measured = (f"; recall@10 {detail['recall@10']:.3f} vs exact, measured on {detail['recall_queries']} "
                    f"query-like probes at {detail['measured_at']} vectors ({'efSearch' if data['ann'] == 'hnsw' else 'nprobe'} "
                    f"{detail['search_param']})" if data["ann"] != "flat" and detail.get("recall@10") is not None
                    else "")
        tombstones = f"; {detail['tombstones']} deleted, not yet compacted" if detail.get("tombstones") else ""
        typer.echo(f"ann index:  {data['ann_description']}{measured}{tombstones}")
        typer.echo(f"ann choice: {data['ann_setting']}, {data['vector_dtype']} vectors, memory budget "
                   f"{data['memory_budget'] / 2**30:.1f} GiB")
        qe = data["query_encoder"]
        typer.echo("queries:    " + ("static table lookup: numpy and tokenizers, no torch" if qe["active"] == "static"
                                     else f"ONNX Runtime, no torch ({qe['file']}; {qe['texts_checked']} texts checked, "
                                     f"min cosine to torch {qe['min_cosine']:.7f})" if qe["active"] == "onnx"
                                     else f"torch, because {qe['why_torch']}"))
        typer.echo(f"disk:       {data['disk_bytes'] / 2**20:.1f} MiB")
    _run(go)


@app.command(cls=_Command)
def delete(
    ids: Annotated[list[str], typer.Argument(help="Document ids (an indexed file's path, or an id given to "
                                                   "add()).", metavar="ID", show_default=False)],
    index: IndexOpt = None, name: NameOpt = "default",
) -> None:
    """Remove documents from an index by id."""
    def go() -> None:
        s = _searcher(index, name)
        resolved = [str(Path(i).resolve()) if Path(i).exists() else i for i in ids]
        n = s.delete(resolved)
        typer.echo(f"{n} of {len(ids)} documents removed")
        if n < len(ids):
            raise typer.Exit(1)
    _run(go)


@app.command(cls=_Command)
def migrate(
    to: Annotated[StoreChoice, typer.Option(help="The vector store to move the index's vectors to.")],
    index: IndexOpt = None, name: NameOpt = "default",
    milvus_uri: MilvusUriOpt = None, milvus_collection: MilvusCollectionOpt = None,
    milvus_index: MilvusIndexOpt = None, milvus_token: MilvusTokenOpt = None, milvus_ca: MilvusCaOpt = None,
    milvus_server_name: MilvusServerNameOpt = None, json_out: JsonOpt = False,
) -> None:
    """Move an index's vectors between FAISS and Milvus without re-embedding (copied from the index's
    database); searches use the new store once the copy is complete, then the old one is deleted."""
    def go() -> None:
        target = _store_config(to, milvus_uri, milvus_collection, milvus_index, milvus_ca, milvus_server_name)
        s = _searcher(index, name, milvus_token=milvus_token)
        result = s.migrate(target)
        typer.echo(output.json_line(result) if json_out else
                   f"moved {result['vectors']} vectors in {result['seconds']:.1f}s: {result['from']} → {result['to']}")
        if result["old_store_left"] and not json_out:
            typer.echo(f"warning: the old vectors were not deleted: {result['old_store_left']}", err=True)
    _run(go)


@app.command(cls=_Command)
def serve(
    index: Annotated[list[Path], typer.Option(
        "--index", "-i", help="Index folder to serve (repeatable; the first is the default; a request names "
        "another by its folder name).", show_default=False, metavar="PATH")],
    folder: Annotated[Optional[list[Path]], typer.Option(
        "--folder", "-f", help="Folder that POST /index re-indexes (repeatable); requests cannot name other "
        "paths.", show_default=False, metavar="DIR")] = None,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs a token.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", metavar="PORT")] = 8765,
    token: Annotated[Optional[str], typer.Option(
        help="Require 'Authorization: Bearer TOKEN' (default: $SEARCHER_TOKEN, if set).", show_default=False, metavar="TOKEN")] = None,
    model: ModelOpt = None,
    rerank: Annotated[Optional[list[str]], typer.Option(
        "--rerank", help="CrossEncoder that requests may ask for by name (repeatable).", show_default=False, metavar="MODEL")] = None,
    max_k: Annotated[int, typer.Option(help="Largest k a request may ask for.", metavar="N")] = 100,
    max_query_chars: Annotated[int, typer.Option(help="Longest query, in characters.", metavar="N")] = 2000,
    max_batch: Annotated[int, typer.Option(help="Most documents per POST /documents.", metavar="N")] = 256,
    max_body: Annotated[str, typer.Option(help="Largest request body.", metavar="SIZE")] = "4MB",
    readers: Annotated[int, typer.Option(help="Searches run at once per index. The readers share the memory-mapped "
                                              "vector file; each copies it once it catches up with a later write "
                                              "(docs/server.md).", metavar="N")] = 2,
    log_level: Annotated[str, typer.Option(
        help="uvicorn log level: critical, error, warning, info, debug.", metavar="LEVEL")] = "info",
    watch: Annotated[Optional[list[Path]], typer.Option(
        "--watch", "-w", help="Keep the first --index in step with this folder as files change (repeatable; "
        "see `searcher watch`).", show_default=False, metavar="DIR")] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the search page in a browser.")] = False,
) -> None:
    """Serve indexes over HTTP, with a search page at / : POST /search, GET /documents/{id}, POST /documents,
    DELETE /documents/{id}, POST /index, GET /info, GET /files."""
    def go() -> None:
        try:
            from .server import Limits
            from .server import serve as run_server
        except ImportError as exc:
            raise SearcherError(f"the server needs the 'server' extra: pip install 'searcher[server]' ({exc})")
        limits = Limits(max_query_chars=max_query_chars, max_k=max_k, max_batch=max_batch,
                        max_body_bytes=_parse_size(max_body, "--max-body"), readers=readers)
        run_server(index, folder or [], host=host, port=port, token=token, limits=limits, model=model,
                   rerankers=rerank or [], log_level=log_level, watch=watch or [], open_page=open_page)
    _run(go)


# ---- searcher watch (issue 17) ------------------------------------------------------------------
@app.command(cls=_Command)
def watch(
    folder: Annotated[Path, typer.Argument(help="Folder to keep the index in step with.", metavar="FOLDER",
                                           show_default=False)],
    index: IndexOpt = None, name: NameOpt = "default", model: ModelOpt = None,
    ext: ExtOpt = None, max_file_size: MaxFileSizeOpt = "10MB", hidden: HiddenOpt = False,
    no_ignore: NoIgnoreOpt = False,
    debounce: Annotated[int, typer.Option(
        help="Milliseconds of quiet that end a batch of changes (a batch lasts at most 1.6 s).", metavar="MS")] = 50,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Index a folder, then keep the index in step with it as files are created, edited, renamed and
    deleted (only the changed files are read again). Ctrl-C stops; the index keeps every run."""
    from ..watch import DEBOUNCE_MS, FolderWatcher, WatchRun

    def go() -> None:
        options = _walk_options(ext, max_file_size, hidden, no_ignore)
        s = _searcher(index, name, model)
        root = folder.expanduser().resolve()

        def on_run(run: WatchRun) -> None:
            if json_out:
                typer.echo(output.json_line({"started": run.started, "seconds": round(run.seconds, 3),
                                             "paths": run.paths, "error": run.error,
                                             "summary": run.report.summary() if run.report else None}))
            elif run.error:
                typer.echo(f"error: {run.error}", err=True)
            elif not quiet:
                what = "the whole folder" if run.paths is None else f"{run.paths} changed path{'s' * (run.paths != 1)}"
                n = run.report.summary()
                typer.echo(f"{time.strftime('%H:%M:%S', time.localtime(run.started))}  {what}: {n['added']} added, "
                           f"{n['updated']} updated, {n['removed']} removed, {n['skipped']} skipped; "
                           f"{n['chunks_embedded']} chunks embedded in {run.seconds:.1f}s")
                for f in run.report.failures:
                    typer.echo(f"  ! {output.display(f.path)}: {f.reason}")

        def on_message(message: str) -> None:
            typer.echo(output.json_line({"message": message}) if json_out else message, err=not json_out)

        watcher = FolderWatcher(root, lambda paths: s.index(root, options=options, paths=paths), options=options,
                                exclude=s.path, on_run=on_run, on_message=on_message,
                                debounce_ms=max(DEBOUNCE_MS, debounce), step_ms=debounce)
        if not quiet and not json_out:
            typer.echo(f"watching {output.display(str(root))} → {s.path} (Ctrl-C stops)", err=True)
        try:
            s.warm(writing=True)         # the model that embeds a saved file, loaded before the first save
            watcher.run()
        except KeyboardInterrupt:
            if not json_out:
                typer.echo("stopped watching; the index holds every finished run", err=True)
        finally:
            s.close()
    _run(go)
# ---- end of searcher watch ---------------------------------------------------------------------


@app.command(cls=_Command)
def mcp(
    index: Annotated[list[Path], typer.Option(
        "--index", "-i", help="Index folder to expose (repeatable; the first is the default).", show_default=False, metavar="PATH")],
    folder: Annotated[Optional[list[Path]], typer.Option(
        "--folder", "-f", help="Folder the index tool may re-index (repeatable).", show_default=False, metavar="DIR")] = None,
    model: ModelOpt = None,
) -> None:
    """Run an MCP server on stdio with search, index_status and reindex tools (for agents)."""
    def go() -> None:
        try:
            from .mcp import run_stdio
        except ImportError as exc:
            raise SearcherError(f"MCP needs the 'mcp' extra: pip install 'searcher[mcp]' ({exc})")
        run_stdio(index, folder or [], model=model)
    _run(go)


# ---- analyze: similar, duplicates, outliers, topics, map (docs/analyze.md) ------------------------
KOpt = Annotated[int, typer.Option("-k", "--top", help="Number of documents to show.", metavar="N")]


def _label(doc_id: str, path: str | None) -> str:
    return output.display(path) if path else doc_id


@app.command(cls=_Command)
def similar(
    target: Annotated[Optional[str], typer.Argument(
        help="An indexed document: its path or id, or one chunk as ID#N.", show_default=False, metavar="DOCUMENT")] = None,
    file: Annotated[Optional[Path], typer.Option(
        "--file", help="Compare a file that need not be indexed (read, chunked and embedded like any file).",
        show_default=False, metavar="PATH")] = None,
    k: KOpt = 10,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """Documents like a given one (meaning and shared rare words), most alike first."""
    def go() -> None:
        found = _searcher(index, name).similar(target, k, file=file, filters=_filters(path, type_, since, before, meta))
        for rank, d in enumerate(found, 1):
            if json_out:
                typer.echo(output.json_line({"rank": rank, **d.to_dict()}))
            else:
                typer.echo(f"{rank:>3}  {d.score:6.3f}  cos {d.cosine:.3f}  {_label(d.id, d.path)}\n       {d.title}")
        if not found and not json_out:
            typer.echo("no similar documents", err=True)
    _run(go)


class TierChoice(str, Enum):
    exact = "exact"
    near = "near"
    semantic = "semantic"


@app.command(cls=_Command)
def duplicates(
    tier: Annotated[Optional[list[TierChoice]], typer.Option(
        help="Only these tiers (repeatable): exact (same text), near (edited copies), semantic (same meaning).",
        show_default=False)] = None,
    chunks: Annotated[bool, typer.Option("--chunks", help="Compare chunks instead of whole documents.")] = False,
    threshold: Annotated[Optional[float], typer.Option(
        help="Semantic tier: pairs scoring at least this, 0..1 (default 0.55, measured on MRPC).",
        show_default=False, metavar="SCORE")] = None,
    near_threshold: Annotated[Optional[float], typer.Option(
        help="Near tier: share of the shorter text's word 3-grams found in the other, 0..1 (default 0.6).",
        show_default=False, metavar="SCORE")] = None,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """Groups of documents that say the same thing, each pair with its tier and score."""
    def go() -> None:
        groups = _searcher(index, name).duplicates(
            tiers=[t.value for t in tier] if tier else ("exact", "near", "semantic"), chunks=chunks,
            threshold=threshold, near_threshold=near_threshold, filters=_filters(path, type_, since, before, meta))
        for n, g in enumerate(groups, 1):
            if json_out:
                typer.echo(output.json_line({"group": n, **g.to_dict()}))
                continue
            typer.echo(f"group {n}: {len(g.ids)} {'chunks' if chunks else 'documents'}, {g.tier}")
            names = dict(zip(g.ids, g.paths))
            for p in g.pairs:
                typer.echo(f"  {p.tier:<8} {p.score:.3f}  {_label(p.a, names[p.a] if not chunks else None)}"
                           f"  ~  {_label(p.b, names[p.b] if not chunks else None)}")
        if not groups and not json_out:
            typer.echo("no duplicates", err=True)
    _run(go)


@app.command(cls=_Command)
def outliers(
    k: KOpt = 10,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """The documents least like the rest; score 2.0 = twice as far from the rest as a typical document."""
    def go() -> None:
        found = _searcher(index, name).outliers(k, filters=_filters(path, type_, since, before, meta))
        for rank, o in enumerate(found, 1):
            if json_out:
                typer.echo(output.json_line({"rank": rank, **o.to_dict()}))
            else:
                typer.echo(f"{rank:>3}  {o.score:5.2f}x  {_label(o.id, o.path)}\n       {o.title}\n"
                           f"       nearest: {o.nearest} (cos {o.nearest_cosine:.3f})")
    _run(go)


TopicsOpt = Annotated[Optional[int], typer.Option(
    "--topics", help="How many topics (default: chosen by silhouette, 2 to 12).", show_default=False, metavar="N")]


@app.command(cls=_Command)
def topics(
    n: TopicsOpt = None,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """The collection's topics: size, distinctive words and the most central documents."""
    def go() -> None:
        for t in _searcher(index, name).topics(n, filters=_filters(path, type_, since, before, meta)):
            if json_out:
                typer.echo(output.json_line(t.to_dict()))
                continue
            typer.echo(f"topic {t.id}  {t.size} documents  {t.label}")
            for doc_id, title in zip(t.representatives, t.titles):
                typer.echo(f"    {output.display(doc_id)}: {title}")
    _run(go)


class ColorChoice(str, Enum):
    topic = "topic"
    type = "type"
    folder = "folder"


@app.command("map", cls=_Command)
def map_(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="File to write: .html (interactive, self-contained, opens offline) or .png.",
        metavar="FILE")],
    color_by: Annotated[ColorChoice, typer.Option(help="Colour points by topic, file type or folder.")]
    = ColorChoice.topic,
    n: TopicsOpt = None,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """Draw the whole collection as a 2-D map, near points alike in meaning, topics labelled."""
    def go() -> None:
        report = _searcher(index, name).map(out, color_by=color_by.value, topics=n,
                                            filters=_filters(path, type_, since, before, meta))
        if json_out:
            typer.echo(output.json_line(report.to_dict()))
        else:
            typer.echo(f"wrote {report.path}: {report.documents} documents, {len(report.topics)} topics, "
                       f"{report.projection}, {report.seconds:.1f} s")
    _run(go)


def main() -> None:
    app(prog_name="searcher")   # also under ``python -m searcher``
