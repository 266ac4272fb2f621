"""What the command line prints: paths as a person reads them, JSON lines, the progress bar, the
index run's summary, a hit's location and highlighted snippet, the list of indexed files."""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import typer

from ..ingest.pathtext import display as display_path
from ..records import Hit, Place


def display(path: str | None) -> str:
    if path is None:
        return ""
    try:
        return display_path(os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path)
    except ValueError:
        return display_path(path)


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(obj: Any) -> str:
    """One JSON line; a file name that is not UTF-8 keeps its bytes as \\udcXX escapes (Python's
    json.loads gives back the exact name) instead of failing to print."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))


PLAIN_SECONDS = 5.0   # a plain progress line at most this often (and at the first and last step)


def progress_style(choice: str, quiet: bool) -> str:
    """``--progress auto``: a bar on a terminal, plain lines otherwise (a log, CI, a pipe)."""
    if quiet or choice == "none":
        return "none"
    if choice == "auto":
        return "bar" if sys.stderr.isatty() else "plain"
    return choice


class progress:
    """Progress on stderr over the files that must be read: a rich bar, a plain line every few
    seconds, or nothing. Used as a context manager that gives the ``progress(done, total)`` callback."""

    def __init__(self, style: str, label: str = "indexing"):
        self.style, self.label = style, label
        self._bar: Any = None
        self._task: Any = None
        self._started = self._printed = 0.0

    def __enter__(self):
        if self.style == "none":
            return None
        self._started = time.monotonic()
        if self.style == "plain":
            return self._line
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=None)
        return self._update

    def _update(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)

    def _line(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._printed and done < total and now - self._printed < PLAIN_SECONDS:
            return
        self._printed = now
        share = f" ({100 * done // total}%)" if total else ""
        print(f"{self.label}: {done}/{total}{share}, {now - self._started:.0f}s", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def print_summary(report, index_path: Path) -> None:
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
        typer.echo(f"  ! {display(f.path)}: {f.reason}")
    if len(failures) > 10:
        typer.echo(f"  ! ... and {len(failures) - 10} more (searcher info --files lists them all)")


def where(item: Hit | Place) -> str:
    """path:line for text and code (the snippet's line), path p.N for PDF, path cell N for
    notebooks, the path alone for HTML and DOCX (their extracted text's lines are not the file's);
    then the heading path. Texts given to ``add()`` have no path: their id stands for it."""
    if not item.path:
        return f"{item.id} ({item.heading})" if item.heading else item.id
    return display(item.path) + (item.location(item.snippet_line) if isinstance(item, Hit) else item.location())


def marked(text: str, marks: tuple[tuple[int, int], ...]) -> str:
    out, pos = [], 0
    for a, b in marks:
        if a < pos:
            continue
        out += [text[pos:a], "\033[1;33m", text[a:b], "\033[0m"]
        pos = b
    return "".join(out + [text[pos:]])


def print_files(data: dict[str, Any]) -> None:
    typer.echo(f"indexed ({len(data['indexed'])}):")
    for d in data["indexed"]:
        label = display(d["id"]) if d["source"] == "file" else f"{d['id']} (added)"
        typer.echo(f"  {label}  [{d['kind'] or 'text'}, {d['chunks']} chunk{'s' * (d['chunks'] != 1)}]")
    typer.echo(f"skipped ({len(data['skipped'])}):")
    for f in data["skipped"]:
        typer.echo(f"  {display(f['path'])}: {f['reason']}")


def print_image_hits(hits, json_out: bool) -> None:
    """Pictures found (``ImageHit``): rank, score, path, size and EXIF date, or JSON lines."""
    for rank, h in enumerate(hits, 1):
        if json_out:
            typer.echo(json_line({"rank": rank, **h.to_dict()}))
        else:
            typer.echo(f"{rank:>3}  {h.score:.3f}  {display(h.path)}  {h.width}×{h.height}"
                       + (f"  taken {h.taken.replace('T', ' ')}" if h.taken else ""))
    if not hits and not json_out:
        typer.echo("no pictures", err=True)
