"""The analyze commands of ``searcher``: similar, duplicates, outliers, topics and map
(docs/analyze.md). Plain functions, registered on the app by ``cli.py``, in this order."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import output
from .cli_options import (
    BeforeOpt,
    IndexOpt,
    JsonOpt,
    MetaOpt,
    NameOpt,
    PathOpt,
    SinceOpt,
    TypeOpt,
    filters_from,
    run,
    searcher_for,
)

# ---- analyze: similar, duplicates, outliers, topics, map (docs/analyze.md) ------------------------
KOpt = Annotated[int, typer.Option("-k", "--top", help="Number of documents to show.", metavar="N")]


def _label(doc_id: str, path: str | None) -> str:
    return output.display(path) if path else doc_id


def similar(
    target: Annotated[Optional[str], typer.Argument(
        help="An indexed document: its path or id, or one chunk as ID#N; or a picture (jpg, png, ...), indexed "
        "or not, when the index has an image model.", show_default=False, metavar="DOCUMENT")] = None,
    file: Annotated[Optional[Path], typer.Option(
        "--file", help="Compare a file that need not be indexed (read, chunked and embedded like any file).",
        show_default=False, metavar="PATH")] = None,
    k: KOpt = 10,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """Documents like a given one (meaning and shared rare words), most alike first; pictures like a
    given picture (cosine of their image vectors)."""
    from ..ingest.readers.image import is_image_name

    def go() -> None:
        picture = target or file
        if picture is not None and is_image_name(str(picture)):
            output.print_image_hits(searcher_for(index, name).similar_images(picture, k), json_out)
            return
        found = searcher_for(index, name).similar(target, k, file=file, filters=filters_from(path, type_, since, before, meta))
        for rank, d in enumerate(found, 1):
            if json_out:
                typer.echo(output.json_line({"rank": rank, **d.to_dict()}))
            else:
                typer.echo(f"{rank:>3}  {d.score:6.3f}  cos {d.cosine:.3f}  {_label(d.id, d.path)}\n       {d.title}")
        if not found and not json_out:
            typer.echo("no similar documents", err=True)
    run(go)


class TierChoice(str, Enum):
    exact = "exact"
    near = "near"
    semantic = "semantic"


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
    images: Annotated[bool, typer.Option(
        "--images", help="Group near-identical pictures instead: exact (perceptual hashes within --hash-distance "
        "bits) and near (image vectors' cosine ≥ --near-threshold, default 0.85).")] = False,
    hash_distance: Annotated[Optional[int], typer.Option(
        help="With --images: exact tier, most differing bits of the 64-bit perceptual hashes (default 4).",
        show_default=False, metavar="BITS")] = None,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """Groups of documents that say the same thing (or, with --images, near-identical pictures), each pair
    with its tier and score."""
    def go() -> None:
        s = searcher_for(index, name)
        if images:
            groups = s.duplicate_images(tiers=[t.value for t in tier] if tier else ("exact", "near"),
                                        hash_distance=hash_distance, near_threshold=near_threshold)
        else:
            groups = s.duplicates(
                tiers=[t.value for t in tier] if tier else ("exact", "near", "semantic"), chunks=chunks,
                threshold=threshold, near_threshold=near_threshold,
                filters=filters_from(path, type_, since, before, meta))
        for n, g in enumerate(groups, 1):
            if json_out:
                typer.echo(output.json_line({"group": n, **g.to_dict()}))
                continue
            typer.echo(f"group {n}: {len(g.ids)} {'pictures' if images else 'chunks' if chunks else 'documents'}, {g.tier}")
            names = dict(zip(g.ids, g.paths))
            for p in g.pairs:
                typer.echo(f"  {p.tier:<8} {p.score:.3f}  {_label(p.a, names[p.a] if not chunks else None)}"
                           f"  ~  {_label(p.b, names[p.b] if not chunks else None)}")
        if not groups and not json_out:
            typer.echo("no duplicates", err=True)
    run(go)


def outliers(
    k: KOpt = 10,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """The documents least like the rest; score 2.0 = twice as far from the rest as a typical document."""
    def go() -> None:
        found = searcher_for(index, name).outliers(k, filters=filters_from(path, type_, since, before, meta))
        for rank, o in enumerate(found, 1):
            if json_out:
                typer.echo(output.json_line({"rank": rank, **o.to_dict()}))
            else:
                typer.echo(f"{rank:>3}  {o.score:5.2f}x  {_label(o.id, o.path)}\n       {o.title}\n"
                           f"       nearest: {o.nearest} (cos {o.nearest_cosine:.3f})")
    run(go)


TopicsOpt = Annotated[Optional[int], typer.Option(
    "--topics", help="How many topics (default: where the topics are most clearly apart, 2 to 12).", show_default=False, metavar="N")]


def topics(
    n: TopicsOpt = None,
    path: PathOpt = None, type_: TypeOpt = None, since: SinceOpt = None, before: BeforeOpt = None,
    meta: MetaOpt = None, index: IndexOpt = None, name: NameOpt = "default", json_out: JsonOpt = False,
) -> None:
    """The collection's topics: size, distinctive words and the most central documents."""
    def go() -> None:
        for t in searcher_for(index, name).topics(n, filters=filters_from(path, type_, since, before, meta)):
            if json_out:
                typer.echo(output.json_line(t.to_dict()))
                continue
            typer.echo(f"topic {t.id}  {t.size} documents  {t.label}")
            for doc_id, title in zip(t.representatives, t.titles):
                typer.echo(f"    {output.display(doc_id)}: {title}")
    run(go)


class ColorChoice(str, Enum):
    topic = "topic"
    type = "type"
    folder = "folder"


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
        report = searcher_for(index, name).map(out, color_by=color_by.value, topics=n,
                                            filters=filters_from(path, type_, since, before, meta))
        if json_out:
            typer.echo(output.json_line(report.to_dict()))
        else:
            typer.echo(f"wrote {report.path}: {report.documents} documents, {len(report.topics)} topics, "
                       f"{report.projection}, {report.seconds:.1f} s")
    run(go)


COMMANDS = {"similar": similar, "duplicates": duplicates, "outliers": outliers, "topics": topics, "map": map_}
