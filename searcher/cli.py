"""The ``searcher`` command: a thin typer layer over ``Searcher``.

Human output by default, ``--json`` for programs (one JSON object per line); errors are one
line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from .errors import SearcherError

app = typer.Typer(
    help="Index a folder of your documents and search it by meaning, locally.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
T = TypeVar("T")

IndexOpt = Annotated[Optional[Path], typer.Option(
    "--index", "-i", help="Index folder to use (default: the index named by --name).", show_default=False)]
NameOpt = Annotated[str, typer.Option(
    "--name", "-n", help="Name of an index under the default indexes folder ($SEARCHER_INDEXES, or the "
    "repository's indexes/).")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="sentence-transformers model name or local path (default: the model that built the "
    "index; for a new index all-MiniLM-L6-v2, shipped offline).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of text.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")]


def _searcher(index: Path | None, name: str, model: str | None = None, **kw: Any):
    from .api import Searcher, default_index_root

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


def _display(path: str | None) -> str:
    from .pathtext import display

    if path is None:
        return ""
    try:
        return display(os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path)
    except ValueError:
        return display(path)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _json(obj: Any) -> str:
    """One JSON line; a file name that is not UTF-8 keeps its bytes as \\udcXX escapes (Python's
    json.loads gives back the exact name) instead of failing to print."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", text.lower())
    if not m:
        raise SearcherError(f"--max-file-size '{text}': give a size such as 500000, 800KB or 20MB")
    unit = (m.group(2) or "").rstrip("b").rstrip("i")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(unit or " "))


@app.command()
def index(
    folder: Annotated[Path, typer.Argument(help="Folder (or single file) to index.", show_default=False)],
    index: IndexOpt = None, name: NameOpt = "default", model: ModelOpt = None,
    chunk_tokens: Annotated[Optional[int], typer.Option(
        help="Largest chunk, in model tokens (default: the most the model reads). Fixed when the index is "
        "created.", show_default=False)] = None,
    overlap: Annotated[Optional[int], typer.Option(
        help="Tokens of whole sentences repeated between neighbouring chunks (default 32). Fixed when the "
        "index is created.", show_default=False)] = None,
    ext: Annotated[Optional[list[str]], typer.Option(
        "--ext", help="Also read files with this extension, e.g. --ext .log (repeatable).")] = None,
    max_file_size: Annotated[str, typer.Option(help="Skip files larger than this.")] = "10MB",
    hidden: Annotated[bool, typer.Option("--hidden", help="Also read hidden files and folders.")] = False,
    no_ignore: Annotated[bool, typer.Option(
        "--no-ignore", help="Do not honour .gitignore and .searcherignore files.")] = False,
    batch_size: Annotated[int, typer.Option(help="Chunks per encoder batch.")] = 32,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Make any file that could not be read an error (exit 1, listing them).")] = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Index a folder: add new files, re-embed only changed text, drop deleted files.

    Exit status: 0 when every file of a type searcher reads was indexed, 3 when some could not be
    read (each is listed with its reason; the rest is indexed), 1 on an error or, with --strict,
    when any file could not be read. Files of other types (images...) are listed, not counted."""
    from .ingest import TEXT_EXTENSIONS, WalkOptions

    def go() -> None:
        extra = {e if e.startswith(".") else f".{e}" for e in (ext or [])}
        options = WalkOptions(extensions=TEXT_EXTENSIONS | {e.lower() for e in extra},
                              max_bytes=_parse_size(max_file_size), hidden=hidden, ignore_files=not no_ignore)
        s = _searcher(index, name, model, chunk_tokens=chunk_tokens, overlap_tokens=overlap,
                      batch_size=batch_size)
        with _progress(quiet or not sys.stderr.isatty()) as progress:
            report = s.index(folder, options=options, progress=progress)
        if json_out:
            for f in report.files:
                typer.echo(_json(f.to_dict()))
            typer.echo(_json({"summary": report.summary()}))
        elif not quiet:
            _print_summary(report, s.path)
        return report
    report = _run(go)
    if report.failures:
        if strict:
            typer.echo(f"error: {len(report.failures)} file{'s' * (len(report.failures) != 1)} could not be "
                       "indexed (--strict):", err=True)
            for f in report.failures:
                typer.echo(f"  {_display(f.path)}: {f.reason}", err=True)
            raise typer.Exit(1)
        raise typer.Exit(3)


class _progress:
    """A rich progress bar on stderr over the files that must be read, or nothing."""

    def __init__(self, silent: bool):
        self.silent = silent
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self):
        if self.silent:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("index", total=None)
        return self._update

    def _update(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _print_summary(report, index_path: Path) -> None:
    s = report.summary()
    typer.echo(f"{s['added']} added, {s['updated']} updated, {s['unchanged']} unchanged, "
               f"{s['removed']} removed, {s['skipped']} skipped; {s['chunks_embedded']} chunks embedded "
               f"in {s['seconds']:.1f}s → {index_path}")
    if s["by_type"]:
        typer.echo(f"  {'type':<10}{'read':>7}{'unchanged':>11}{'chunks':>8}{'failed':>8}")
        for kind, row in s["by_type"].items():
            typer.echo(f"  {kind:<10}{row['read']:>7}{row['unchanged']:>11}{row['chunks']:>8}{row['failed']:>8}")
    for reason, n in sorted(s["skipped_reasons"].items(), key=lambda x: -x[1]):
        typer.echo(f"  skipped {n}: {reason}")
    failures = report.failures
    for f in failures[:10]:
        typer.echo(f"  ! {_display(f.path)}: {f.reason}")
    if len(failures) > 10:
        typer.echo(f"  ! ... and {len(failures) - 10} more (searcher info --files lists them all)")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of results.")] = 10,
    index: IndexOpt = None, name: NameOpt = "default", model: ModelOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search an index: rank, score, path:line and a snippet per hit (or JSON lines)."""
    def go() -> None:
        hits = _searcher(index, name, model).search(query, k=k)
        for rank, h in enumerate(hits, 1):
            if json_out:
                typer.echo(_json({"rank": rank, **h.to_dict()}))
            else:
                where = f"{_display(h.path)}{h.location()}" if h.path else h.id
                typer.echo(f"{rank:>3}  {h.score:.3f}  {where}")
                typer.echo(f"     {_snippet(h.text)}")
        if not hits and not json_out:
            typer.echo("no results", err=True)
    _run(go)


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1].rsplit(" ", 1)[0] + " …"


@app.command()
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
            typer.echo(_json(data))
            return
        if files:
            _print_files(data)
            return
        m = data["model"]
        typer.echo(f"index:      {data['index']}")
        typer.echo(f"documents:  {data['documents']} ({data['files']} files)")
        typer.echo(f"chunks:     {data['chunks']} ({data['vectors']} distinct vectors)")
        typer.echo(f"model:      {m['name']} (dim {m['dim']}, max {m['max_seq_length']} tokens, "
                   f"weights {m['fingerprint'][:12]})")
        typer.echo(f"chunking:   ≤ {data['chunking']['max_tokens']} tokens, "
                   f"{data['chunking']['overlap_tokens']} overlap")
        typer.echo(f"ann index:  {data['ann_description']}")
        typer.echo(f"disk:       {data['disk_bytes'] / 2**20:.1f} MiB")
    _run(go)


def _print_files(data: dict[str, Any]) -> None:
    typer.echo(f"indexed ({len(data['indexed'])}):")
    for d in data["indexed"]:
        label = _display(d["id"]) if d["source"] == "file" else f"{d['id']} (added)"
        typer.echo(f"  {label}  [{d['kind'] or 'text'}, {d['chunks']} chunk{'s' * (d['chunks'] != 1)}]")
    typer.echo(f"skipped ({len(data['skipped'])}):")
    for f in data["skipped"]:
        typer.echo(f"  {_display(f['path'])}: {f['reason']}")


@app.command()
def delete(
    ids: Annotated[list[str], typer.Argument(help="Document ids (an indexed file's path, or an id given to "
                                                   "add()).", show_default=False)],
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
