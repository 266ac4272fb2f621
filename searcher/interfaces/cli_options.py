"""What the ``searcher`` commands share: their options, how a value given on the command line is
checked and turned into what the façade takes, and how a command runs (one-line errors, exit codes)."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from typer.core import TyperCommand

from ..errors import SearcherError

T = TypeVar("T")


class Command(TyperCommand):
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


def store_config(kind: StoreChoice | None, uri: str | None, collection: str | None, index_type: str | None,
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


def searcher_for(index: Path | None, name: str, model: str | None = None, **kw: Any):
    from ..api import Searcher, default_index_root

    if not re.fullmatch(r"[\w.-]+", name) or name in (".", ".."):
        raise SearcherError(f"--name '{name}': use letters, digits, '.', '-' or '_' only")
    return Searcher(index if index is not None else default_index_root() / name, model=model, **kw)


def run(action: Callable[[], T]) -> T:
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


def parse_size(text: str, option: str = "--max-file-size") -> int:
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


def walk_options(ext: list[str] | None, max_file_size: str, hidden: bool, no_ignore: bool):
    """What to read of a folder, from the options ``index`` and ``watch`` share."""
    from ..ingest.walk import WalkOptions

    return WalkOptions(max_bytes=parse_size(max_file_size), hidden=hidden, ignore_files=not no_ignore).reading(ext or [])


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


def filters_from(path: str | None, types: list[str] | None, since: str | None, before: str | None,
             meta: list[str] | None):
    from ..records import Filters

    return Filters(path=path, types=tuple(types or ()), modified_after=parse_when(since, "--since"),
                   modified_before=parse_when(before, "--before"), metadata=parse_meta(meta or []))


def parse_when(text: str | None, option: str) -> float | None:
    """A date, a date and time (local time), or an age such as 7d / 12h / 2w / 30m, as POSIX seconds."""
    if text is None:
        return None
    import datetime as dt

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text.lower())
    if m:
        return time.time() - float(m.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise SearcherError(f"{option} '{text}': give a date like 2026-01-31, 2026-01-31T12:00, or an age "
                            "like 7d, 12h, 2w") from None


def parse_meta(pairs: list[str]) -> dict[str, Any]:
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
