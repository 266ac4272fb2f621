"""The HTTP API's request and response bodies (pydantic models, in the OpenAPI schema) and its
error type. Requests are strict: unknown fields and wrong types are a 400, never coerced."""
from __future__ import annotations

import math
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator
from typing_extensions import Annotated


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_MAX_SECONDS = 9e9          # POSIX seconds whose nanoseconds still fit SQLite's 64-bit integers
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
Finite = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Scalar = Union[StrictBool, Int64, Finite, StrictStr, None]
Seconds = Annotated[float, Field(ge=-_MAX_SECONDS, le=_MAX_SECONDS, allow_inf_nan=False)]


def _check_json(value: Any, depth: int = 0) -> Any:
    """Metadata must round-trip through JSON and SQLite: finite numbers, 64-bit integers, bounded depth."""
    if depth > 20:
        raise ValueError("metadata is nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("metadata numbers must be finite")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ValueError("metadata integers must fit in 64 bits")
    if isinstance(value, dict):
        for v in value.values():
            _check_json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_json(v, depth + 1)
    return value


class FiltersIn(_Strict):
    path: Optional[str] = Field(None, max_length=1000, description="Glob on the file path ('*' crosses folders).")
    types: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list, max_length=50,
                                                              description="File extensions, e.g. ['md', 'py'].")
    modified_after: Optional[Seconds] = Field(None, description="POSIX seconds, inclusive.")
    modified_before: Optional[Seconds] = Field(None, description="POSIX seconds, exclusive.")
    metadata: dict[str, Union[Scalar, list[Scalar]]] = Field(
        default_factory=dict, max_length=50, description="key → value (or list: any of).")


class SearchIn(_Strict):
    query: str = Field(..., description="What to look for, in your own words (empty: 400).")
    k: int = Field(10, ge=1, description="Number of hits.")
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filters: Optional[FiltersIn] = None
    group_by_file: bool = False
    min_score: Optional[Finite] = None
    rerank: Optional[str] = Field(None, description="A CrossEncoder the server was started with (--rerank).")
    fusion: Literal["zscore", "rrf"] = "zscore"
    feedback: bool = True
    index: Optional[str] = Field(None, description="Index name (default: the first --index).")
    snippets: bool = Field(False, description="Add each hit's snippet: its sentence that best matches the "
                                              "query, with the query's words marked (as the CLI prints).")


class PlaceOut(BaseModel):
    id: str
    path: Optional[str]
    lines: list[int]
    chunk: int
    page: Optional[int]
    heading: Optional[str]
    location: str


class HitOut(BaseModel):
    id: str
    path: Optional[str]
    score: float
    text: str
    lines: list[int] = Field(description="First and last line of the chunk (1-based).")
    chunk: int
    chars: list[int]
    page: Optional[int]
    heading: Optional[str]
    location: str = Field("", description="Where in the document, for people: ':120 (Install > Linux)' (the "
                                          "chunk's first line), 'p.7 (2 Methods)', 'cell 4'.")
    snippet: str = Field("", description="The chunk's sentence that best matches the query.")
    snippet_line: Optional[int] = Field(None, description="The line that snippet starts on (what the CLI shows).")
    metadata: dict[str, Any]
    also: list[PlaceOut] = Field([], description="Other places holding exactly the same text (identical files).")
    scores: dict[str, Optional[float]] = Field({}, description="Raw scores: fused (hybrid, before scaling to "
                                                "0..1), dense (cosine), keyword (BM25; null: no query word).")
    snippet_marks: Optional[list[list[int]]] = Field(None, description="With snippets=true: [start, end) character "
                                                                       "spans of snippet that match query words.")


class SearchOut(BaseModel):
    index: str
    hits: list[HitOut]
    took_ms: float


class DocumentIn(_Strict):
    id: Optional[str] = Field(None, min_length=1, max_length=1000, description="Default: a new random id.")
    text: str = Field(..., min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_json(value)


class DocumentOut(BaseModel):
    index: str
    id: str
    path: Optional[str]
    kind: str = Field(..., description="The reader that read it: text, markdown, pdf, html, ...")
    text: str = Field(..., description="Rebuilt from the index's chunks (never read from the file): a hit's "
                                       "chars are offsets into it.")
    size: int
    mtime: float = Field(..., description="POSIX seconds.")
    metadata: dict[str, Any]


class DocumentsIn(_Strict):
    documents: list[DocumentIn] = Field(..., min_length=1)
    index: Optional[str] = None


class DocumentsOut(BaseModel):
    index: str
    ids: list[str]


class DeleteOut(BaseModel):
    index: str
    id: str
    deleted: int


class DeleteIn(_Strict):
    ids: list[str] = Field(..., min_length=1, description="Document ids, removed in one commit.")
    index: Optional[str] = None


class DeleteManyOut(BaseModel):
    index: str
    deleted: int


class IndexIn(_Strict):
    index: Optional[str] = None


class JobOut(BaseModel):
    id: str
    index: str
    status: Literal["queued", "running", "done", "failed"]
    status_url: str
    started: Optional[float] = None
    finished: Optional[float] = None
    folders: list[str]
    summary: list[dict[str, Any]] = Field(default_factory=list, description="One index-run summary per folder.")
    error: Optional[str] = None


class ErrorOut(BaseModel):
    error: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    indexes: list[str]


ERRORS = {400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 404: {"model": ErrorOut},
           409: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}}


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# ---- analyze: similar, duplicates, outliers, topics, map (docs/analyze.md) -----------------------
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class SimilarIn(_Strict):
    id: str = Field(..., min_length=1, max_length=1000,
                    description="An indexed document's id or path, or one chunk as ID#N.")
    k: int = Field(10, ge=1, description="Number of documents.")
    filters: Optional[FiltersIn] = None
    index: Optional[str] = Field(None, description="Index name (default: the first --index).")


class SimilarOut(BaseModel):
    index: str
    similar: list[dict[str, Any]] = Field(..., description="id, path, score (fused), cosine, title; most alike first.")


class DuplicatesIn(_Strict):
    tiers: list[Literal["exact", "near", "semantic"]] = Field(["exact", "near", "semantic"], min_length=1)
    chunks: bool = Field(False, description="Compare chunks (ids ID#N) instead of whole documents.")
    threshold: Optional[Fraction] = Field(None, description="Semantic tier threshold (default 0.55).")
    near_threshold: Optional[Fraction] = Field(None, description="Near tier threshold (default 0.6).")
    filters: Optional[FiltersIn] = None
    index: Optional[str] = None


class DuplicatesOut(BaseModel):
    index: str
    groups: list[dict[str, Any]] = Field(..., description="ids, paths, tier, pairs (a, b, tier, score).")


class OutliersIn(_Strict):
    k: int = Field(10, ge=1)
    filters: Optional[FiltersIn] = None
    index: Optional[str] = None


class OutliersOut(BaseModel):
    index: str
    outliers: list[dict[str, Any]] = Field(..., description="id, path, score (x the typical distance), "
                                                            "distance, nearest, nearest_cosine, title.")


class TopicsIn(_Strict):
    n: Optional[int] = Field(None, ge=2, description="How many topics (default: where the topics are most clearly apart, 2..12).")
    filters: Optional[FiltersIn] = None
    index: Optional[str] = None


class TopicsOut(BaseModel):
    index: str
    topics: list[dict[str, Any]] = Field(..., description="id, label, words, size, representatives, titles, members (every document id, nearest the centre first).")


class MapIn(_Strict):
    format: Literal["html", "png"] = Field("html", description="html: interactive, self-contained; png: a picture.")
    color_by: Literal["topic", "type", "folder"] = "topic"
    n: Optional[int] = Field(None, ge=2, description="How many topics (default: where the topics are most clearly apart, 2..12).")
    filters: Optional[FiltersIn] = None
    index: Optional[str] = None


# ---- images (docs/images.md) ---------------------------------------------------------------------
class ImageSearchIn(_Strict):
    query: str = Field(..., description="A sentence describing the picture (needs a CLIP image model).")
    k: int = Field(10, ge=1, description="Number of pictures.")
    index: Optional[str] = Field(None, description="Index name (default: the first --index).")


class ImageSimilarIn(_Strict):
    path: str = Field(..., min_length=1, max_length=4096, description="An indexed picture's path.")
    k: int = Field(10, ge=1, description="Number of pictures.")
    index: Optional[str] = Field(None, description="Index name (default: the first --index).")


class ImagesOut(BaseModel):
    index: str
    images: list[dict[str, Any]] = Field(..., description="id, path, score (cosine), width, height, taken "
                                                          "(EXIF date or null); best first.")


class ImageDuplicatesIn(_Strict):
    tiers: list[Literal["exact", "near"]] = Field(["exact", "near"], min_length=1)
    hash_distance: Optional[StrictInt] = Field(None, ge=0, le=64, description="Exact tier: most differing bits "
                                                                              "of the perceptual hashes (default 4).")
    near_threshold: Optional[Fraction] = Field(None, description="Near tier: least cosine (default 0.85).")
    index: Optional[str] = None
