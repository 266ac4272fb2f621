"""The ``searcher`` command: a thin typer layer over ``Searcher``.

Human output by default, ``--json`` for programs (one JSON object per line); errors are one
line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SearcherError
from . import cli_analyze, output
from .cli_options import (
    AnnChoice,
    BeforeOpt,
    Command,
    DtypeChoice,
    ExtOpt,
    FeedbackOpt,
    FusionChoice,
    FusionOpt,
    HiddenOpt,
    IndexOpt,
    JsonOpt,
    MaxFileSizeOpt,
    MetaOpt,
    MilvusCaOpt,
    MilvusCollectionOpt,
    MilvusIndexOpt,
    MilvusServerNameOpt,
    MilvusTokenOpt,
    MilvusUriOpt,
    ModeChoice,
    ModelOpt,
    NameOpt,
    NoIgnoreOpt,
    PathOpt,
    PrecisionOpt,
    ProgressChoice,
    ProgressOpt,
    QuietOpt,
    SinceOpt,
    StoreChoice,
    TypeOpt,
    filters_from,
    parse_size,
    run,
    searcher_for,
    store_config,
    walk_options,
)

app = typer.Typer(
    help="Index a folder of your documents and search it by meaning, locally.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,   # plain help: switches without a type, -k before --top, words wrapped whole
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command(cls=Command)
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
    image_model: Annotated[Optional[str], typer.Option(
        help="Also index pictures (jpg, png, webp, gif, bmp, tiff) with this image model: efficientnet-lite0 "
        "(shipped, offline; picture → picture) or a sentence-transformers CLIP name or folder (also sentence → "
        "picture). Recorded in the index; docs/images.md.", show_default=False, metavar="MODEL")] = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False, progress_choice: ProgressOpt = ProgressChoice.auto,
) -> None:
    """Index a folder: add new files, re-embed only changed text, drop deleted files.

    Exit status: 0 when every file of a type searcher reads was indexed, 3 when some could not be
    read (each is listed with its reason; the rest is indexed), 1 on an error or, with --strict,
    when any file could not be read. Files of other types (images...) are listed, not counted."""
    def go() -> None:
        options = walk_options(ext, max_file_size, hidden, no_ignore)
        store = store_config(vector_store, milvus_uri, milvus_collection, milvus_index, milvus_ca,
                              milvus_server_name)
        s = searcher_for(index, name, model, chunk_tokens=chunk_tokens, overlap_tokens=overlap,
                      batch_size=batch_size, vector_store=store, milvus_token=milvus_token, ray_address=ray_address,
                      precision=precision, ann=ann.value if ann else None,
                      vector_dtype=vector_dtype.value if vector_dtype else None, memory_budget=memory_budget,
                      image_model=image_model)
        with output.progress(output.progress_style(progress_choice.value, quiet)) as progress:
            report = s.index(folder, options=options, progress=progress)
        if json_out:
            for f in report.files:
                typer.echo(output.json_line(f.to_dict()))
            typer.echo(output.json_line({"summary": report.summary()}))
        elif not quiet:
            output.print_summary(report, s.path)
        return report
    report = run(go)
    if report.failures:
        if strict:
            typer.echo(f"error: {len(report.failures)} file{'s' * (len(report.failures) != 1)} could not be "
                       "indexed (--strict):", err=True)
            for f in report.failures:
                typer.echo(f"  {output.display(f.path)}: {f.reason}", err=True)
            raise typer.Exit(1)
        raise typer.Exit(3)


@app.command(cls=Command)
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
    images: Annotated[bool, typer.Option(
        "--images", help="Search the index's pictures instead of its text (needs a CLIP --image-model); score: "
        "cosine of sentence and picture.")] = False,
    image_model: Annotated[Optional[str], typer.Option(
        help="With --images: the image model to load (default: the index's own; another one is an error).",
        show_default=False, metavar="MODEL")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Search an index: rank, score, path:line and a snippet per hit (or JSON lines).

    The score depends on the mode. hybrid (default): 0..1, how close the hit comes to a chunk that
    every leg (meaning, keywords, exact phrase, rare words) ranks first for this query; 1 = first
    in every leg. dense: cosine similarity of query and chunk (-1..1). keyword: BM25 (0 and up).
    --json also gives each hit's raw scores: fused, dense (cosine) and keyword (BM25)."""
    from ..search.snippets import make_snippet

    def go() -> None:
        if images:
            output.print_image_hits(searcher_for(index, name, model, image_model=image_model).search_images(query, k=k),
                                    json_out)
            return
        hits = searcher_for(index, name, model).search(query, k=k, mode=mode.value,
                                                     filters=filters_from(path, type_, since, before, meta),
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
    run(go)


@app.command("eval", cls=Command)
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
        s = searcher_for(index, name or f"eval-{collection.resolve().name}", model, precision=precision)
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
    run(go)


@app.command(cls=Command)
def info(index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
         files: Annotated[bool, typer.Option(
             "--files", help="List the indexed files and the files skipped, with the reason.")] = False) -> None:
    """Show what an index holds: files, chunks, model, index type and size on disk."""
    def go() -> None:
        s = searcher_for(index, name)
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
        if data.get("image_model"):
            im = data["image_model"]
            typer.echo(f"pictures:   {data['images']}, image model {im['name']} (dim {im['dim']}, weights "
                       f"{im['fingerprint'][:12]}{', reads text' if im['reads_text'] else ''})")
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
    run(go)


@app.command(cls=Command)
def delete(
    ids: Annotated[list[str], typer.Argument(help="Document ids (an indexed file's path, or an id given to "
                                                   "add()).", metavar="ID", show_default=False)],
    index: IndexOpt = None, name: NameOpt = "default",
) -> None:
    """Remove documents from an index by id."""
    def go() -> None:
        s = searcher_for(index, name)
        resolved = [str(Path(i).resolve()) if Path(i).exists() else i for i in ids]
        n = s.delete(resolved)
        typer.echo(f"{n} of {len(ids)} documents removed")
        if n < len(ids):
            raise typer.Exit(1)
    run(go)


@app.command(cls=Command)
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
        target = store_config(to, milvus_uri, milvus_collection, milvus_index, milvus_ca, milvus_server_name)
        s = searcher_for(index, name, milvus_token=milvus_token)
        result = s.migrate(target)
        typer.echo(output.json_line(result) if json_out else
                   f"moved {result['vectors']} vectors in {result['seconds']:.1f}s: {result['from']} → {result['to']}")
        if result["old_store_left"] and not json_out:
            typer.echo(f"warning: the old vectors were not deleted: {result['old_store_left']}", err=True)
    run(go)


@app.command(cls=Command)
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
            from .server import serve as run_server
            from .server_state import Limits
        except ImportError as exc:
            raise SearcherError(f"the server needs the 'server' extra: pip install 'searcher[server]' ({exc})")
        limits = Limits(max_query_chars=max_query_chars, max_k=max_k, max_batch=max_batch,
                        max_body_bytes=parse_size(max_body, "--max-body"), readers=readers)
        run_server(index, folder or [], host=host, port=port, token=token, limits=limits, model=model,
                   rerankers=rerank or [], log_level=log_level, watch=watch or [], open_page=open_page)
    run(go)



@app.command(cls=Command)
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
        options = walk_options(ext, max_file_size, hidden, no_ignore)
        s = searcher_for(index, name, model)
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
    run(go)



@app.command(cls=Command)
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
    run(go)


for _name, _command in cli_analyze.COMMANDS.items():   # after the commands above, in --help too
    app.command(_name, cls=Command)(_command)


def main() -> None:
    app(prog_name="searcher")   # also under ``python -m searcher``
