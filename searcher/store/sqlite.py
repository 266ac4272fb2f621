"""SQLite store: the source of truth for documents, chunks and their vectors.

Every write transaction bumps a *generation* number. Chunks remember the generation that added
them and deleted chunks leave a tombstone with the generation that removed them, so a vector
index saved at generation g can be brought up to date from here without a rebuild.
The schema is documented in docs/format.md.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SearcherError
from ..ingest.pathtext import from_db, to_db
from ..records import Chunk, Document, Filters
from . import keyword

SCHEMA_VERSION = 2   # 2: chunks.page/heading, chunks_fts, skipped
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id    TEXT NOT NULL UNIQUE,
    source    TEXT NOT NULL CHECK (source IN ('file', 'api')),
    path      TEXT,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    sha256    TEXT NOT NULL,
    metadata  TEXT NOT NULL DEFAULT '{}',
    gen       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    document    INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    text_hash   BLOB NOT NULL,
    start_char  INTEGER NOT NULL,
    end_char    INTEGER NOT NULL,
    start_line  INTEGER NOT NULL,
    end_line    INTEGER NOT NULL,
    n_tokens    INTEGER NOT NULL,
    page        INTEGER,
    heading     TEXT,
    gen         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document);
CREATE INDEX IF NOT EXISTS chunks_gen ON chunks(gen);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS embeddings (text_hash BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tombstones (id INTEGER PRIMARY KEY, gen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_gen ON tombstones(gen);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(terms, tokenize = "unicode61 tokenchars '_.'");
CREATE TRIGGER IF NOT EXISTS chunk_tombstone AFTER DELETE ON chunks BEGIN
    INSERT OR REPLACE INTO tombstones (id, gen)
    VALUES (old.id, (SELECT value FROM meta WHERE key = 'generation'));
    DELETE FROM chunks_fts WHERE rowid = old.id;
END;
"""


def _filter_sql(f: Filters) -> tuple[str, list[Any]]:
    """A WHERE clause over ``documents d`` for the filters (``1`` when there are none)."""
    conds, args = [], []
    if f.path:
        conds.append("d.path GLOB ?")
        # a name that is not UTF-8 is stored with its odd bytes mapped (pathtext), so is the pattern
        args.append(to_db(f.path if f.path.startswith(("/", "*")) else "*/" + f.path))
    if f.types:
        conds.append("(" + " OR ".join("lower(d.path) GLOB ?" for _ in f.types) + ")")
        args += [f"*.{t.lower().lstrip('.')}" for t in f.types]
    for when, op in ((f.modified_after, ">="), (f.modified_before, "<")):
        if when is not None:
            if not isinstance(when, (int, float)) or not -1e10 < when < 1e10:
                raise SearcherError(f"filters: a modification time must be POSIX seconds, got {when!r}")
            conds.append(f"d.mtime_ns {op} ?")
            args.append(int(when * 1e9))
    for key, value in f.metadata.items():
        values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        path = '$."' + str(key).replace('"', '""') + '"'
        conds.append(f"json_extract(d.metadata, ?) IN ({','.join('?' * len(values))})")
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
                raise SearcherError(f"filters: metadata value {v} is too large")
            if not isinstance(v, (str, int, float, bool)) and v is not None:
                raise SearcherError(f"filters: metadata '{key}' must be a string, number or boolean, or a list of them")
        args += [path, *(int(v) if isinstance(v, bool) else v for v in values)]
    return (" AND ".join(conds) or "1"), args


def _join_chunks(chunks: Sequence[tuple[str, int, int, int]]) -> str:
    """A document's text from its (text, start_char, start_line, end_line) chunks, in order."""
    out: list[str] = []
    end, newlines = 0, 0            # where the text so far ends, and how many newlines it holds
    for text, start, first, last in chunks:
        if start + len(text) <= end:
            continue
        if start >= end:            # a gap the chunker dropped: white space spanning these lines
            gap_lines = max(0, min(first - 1 - newlines, start - end))
            out.append("\n" * gap_lines + " " * (start - end - gap_lines))
        out.append(text[max(0, end - start):])   # overlapping chunks: only what is new
        end, newlines = start + len(text), last - 1 + text.endswith("\n")
    return "".join(out)


def text_hash(text: str) -> bytes:
    """The key of the embedding cache: equal texts share one vector."""
    return blake2b(text.encode("utf-8"), digest_size=16).digest()


@dataclass(frozen=True)
class DocState:
    """What change detection needs to know of an indexed document."""

    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class ChunkRow:
    """A stored chunk joined with its document, as the query stage needs it."""

    id: int
    doc_id: str
    path: str | None
    metadata: dict[str, Any]
    ord: int
    text: str
    start_char: int
    end_char: int
    start_line: int
    end_line: int
    page: int | None
    heading: str | None


def encode_vector(v: np.ndarray, dtype: str) -> bytes:
    """A unit vector as stored in ``embeddings.vector``: float32 or float16 values, or for int8 a
    float32 scale followed by the values divided by it (the largest one becomes ±127)."""
    v = np.asarray(v, dtype=np.float32)
    if dtype == "float16":
        return v.astype("<f2").tobytes()
    if dtype == "int8":
        scale = float(np.abs(v).max()) / 127 or 1.0
        return np.float32(scale).tobytes() + np.round(v / scale).astype(np.int8).tobytes()
    return v.astype("<f4").tobytes()


def decode_vectors(blobs: Sequence[bytes], dim: int, dtype: str) -> np.ndarray:
    """Rows of float32 vectors back from ``encode_vector`` blobs."""
    data = b"".join(blobs)
    if dtype == "float16":
        return np.frombuffer(data, dtype="<f2").reshape(len(blobs), dim).astype(np.float32)
    if dtype == "int8":
        rows = np.frombuffer(data, dtype=np.uint8).reshape(len(blobs), dim + 4)
        scale = rows[:, :4].copy().view("<f4")
        return rows[:, 4:].view(np.int8).astype(np.float32) * scale
    return np.frombuffer(data, dtype="<f4").reshape(len(blobs), dim)


def storage_error(path: Path, exc: sqlite3.Error) -> Exception:
    """A failure of the disk under the database, worded as what to do about it (else ``exc``)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return SearcherError(f"{path}: the disk is full ({exc}); free space and run the command again: everything "
                             "committed before is kept")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN) or (code or 0) & 0xFF == sqlite3.SQLITE_READONLY:
        return SearcherError(f"{path}: cannot open it for writing ({exc}); searcher needs write access to the index "
                             "folder, even to search (SQLite keeps its -wal and -shm files there)")
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return SearcherError(f"{path}: the database is damaged ({exc}); rebuild the index into a new folder "
                             "(searcher index FOLDER --index NEW_FOLDER)")
    if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
        return SearcherError(f"{path}: I/O error ({exc}); check the disk, then run the command again")
    return exc


@dataclass(frozen=True)
class AnalysisChunk:
    """A stored chunk as the analyses need it: its document, text and keyword terms."""

    id: int
    doc_id: str
    path: str | None
    mtime_ns: int
    metadata: dict[str, Any]
    ord: int
    text: str
    terms: str           # the chunk's keyword-index terms, space separated


class Store:
    """One SQLite database in WAL mode: any number of readers, one writer, each seeing whole commits."""

    def __init__(self, path: Path, dim: int, dtype: str = "float32"):
        self.path = path
        self.dim = dim
        self.dtype = dtype     # how embeddings.vector is encoded (the manifest's vectors.dtype)
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise storage_error(path, exc) from None

    @classmethod
    def open(cls, path: Path, dim: int, dtype: str = "float32") -> Store:
        """Open an existing store, refusing one written in another schema version."""
        store = cls(path, dim, dtype)
        try:
            row = store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            store.close()
            raise SearcherError(f"{path}: not a searcher database ({exc}); rebuild the index") from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            store.close()
            raise SearcherError(f"{path}: index schema version {row[0] if row else 'unknown'} is not the version "
                                f"this searcher reads ({SCHEMA_VERSION}); rebuild it into a new --index")
        return store

    @classmethod
    def create(cls, path: Path, dim: int) -> Store:
        store = cls(path, dim)
        store.conn.executescript(_SCHEMA)  # idempotent: a creation cut short is simply redone
        with store._transaction("IMMEDIATE"):
            store.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            store.conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', 0)")
            store.conn.execute("INSERT OR IGNORE INTO meta VALUES ('tombstones_pruned_through', 0)")
        return store

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _transaction(self, mode: str = "DEFERRED") -> Iterator[None]:
        self.conn.execute(f"BEGIN {mode}")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise storage_error(self.path, exc) from None
            raise

    @contextmanager
    def write(self, new_generation: bool = True) -> Iterator[int]:
        """A write transaction; yields the generation that everything written in it carries.

        Pass ``new_generation=False`` for housekeeping that changes no searchable content."""
        with self._transaction("IMMEDIATE"):
            if new_generation:
                self.conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
            yield self.generation()

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A read transaction: every query inside sees the same commit. Yields its generation."""
        with self._transaction("DEFERRED"):
            yield self.generation()

    def _meta(self, key: str) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def generation(self) -> int:
        return self._meta("generation")

    def tombstones_pruned_through(self) -> int:
        return self._meta("tombstones_pruned_through")

    # ---- reads -------------------------------------------------------------------------------
    def file_states(self, root: str) -> dict[str, DocState]:
        """Indexed files at or below the folder ``root``, by path."""
        rows = self.conn.execute(
            "SELECT path, size, mtime_ns, sha256 FROM documents WHERE source = 'file' "
            "AND (path = ? OR substr(path, 1, ?) = ?)", (to_db(root), len(to_db(root)) + 1, to_db(root.rstrip("/") + "/")))
        return {from_db(p): DocState(s, m, h) for p, s, m, h in rows}

    def cached_vectors(self, hashes: Iterable[bytes]) -> dict[bytes, np.ndarray]:
        out: dict[bytes, np.ndarray] = {}
        hashes = list(dict.fromkeys(hashes))
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            q = f"SELECT text_hash, vector FROM embeddings WHERE text_hash IN ({','.join('?' * len(part))})"
            rows = self.conn.execute(q, part).fetchall()
            if rows:
                out.update(zip((h for h, _ in rows), decode_vectors([b for _, b in rows], self.dim, self.dtype)))
        return out

    def _vector_batches(self, where: str, args: Sequence[Any], batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        cur = self.conn.execute(
            "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.text_hash = c.text_hash "
            f"WHERE {where} ORDER BY c.id", args)
        while rows := cur.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, decode_vectors([r[1] for r in rows], self.dim, self.dtype)

    def vectors_since(self, gen: int, batch: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the chunks added after generation ``gen`` (all chunks for gen < 0)."""
        return self._vector_batches("c.gen > ?", (gen,), batch)

    def removed_since(self, gen: int) -> np.ndarray:
        rows = self.conn.execute("SELECT id FROM tombstones WHERE gen > ?", (gen,)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        ids = [int(i) for i in ids]
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            q = ("SELECT c.id, d.doc_id, d.path, d.metadata, c.ord, c.text, c.start_char, c.end_char, "
                 "c.start_line, c.end_line, c.page, c.heading FROM chunks c JOIN documents d ON d.id = c.document "
                 f"WHERE c.id IN ({','.join('?' * len(part))})")
            for r in self.conn.execute(q, part):
                out[r[0]] = ChunkRow(r[0], from_db(r[1]), from_db(r[2]), json.loads(r[3]), *r[4:])
        return out

    def spread_texts(self, n: int) -> list[str]:
        """The texts of up to ``n`` chunks spread evenly over the chunk ids, the same ones each time."""
        ids = np.array([r[0] for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
        if not len(ids):
            return []
        picked = np.unique(ids[np.linspace(0, len(ids) - 1, min(n, len(ids))).astype(np.int64)]).tolist()
        marks = ",".join("?" * len(picked))
        return [r[0] for r in self.conn.execute(f"SELECT text FROM chunks WHERE id IN ({marks}) ORDER BY id", picked)]

    def sample_texts(self, n: int) -> list[str]:
        """Up to ``n`` chunk texts: the longest half, the rest at random (to check an encoder on)."""
        longest = [r[0] for r in self.conn.execute("SELECT text FROM chunks ORDER BY n_tokens DESC LIMIT ?",
                                                   (n // 2,))]
        rest = [r[0] for r in self.conn.execute("SELECT text FROM chunks ORDER BY random() LIMIT ?",
                                                (n - len(longest),))]
        return list(dict.fromkeys(longest + rest))

    def stats(self) -> dict[str, int]:
        one = lambda q: int(self.conn.execute(q).fetchone()[0])  # noqa: E731
        return {
            "documents": one("SELECT count(*) FROM documents"),
            "files": one("SELECT count(*) FROM documents WHERE source = 'file'"),
            "chunks": one("SELECT count(*) FROM chunks"),
            "vectors": one("SELECT count(*) FROM embeddings"),
            "generation": self.generation(),
        }

    def api_states(self, doc_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(sha256, metadata JSON) of documents added through the API, by id."""
        out: dict[str, tuple[str, str]] = {}
        for i in range(0, len(doc_ids), 500):
            part = list(doc_ids[i:i + 500])
            q = f"SELECT doc_id, sha256, metadata FROM documents WHERE doc_id IN ({','.join('?' * len(part))})"
            out.update((d, (h, m)) for d, h, m in self.conn.execute(q, part))
        return out

    def filtered_ids(self, filters: Filters) -> np.ndarray:
        """Ids of every chunk whose document passes ``filters``."""
        where, args = _filter_sql(filters)
        rows = self.conn.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document WHERE {where}", args)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def keyword_stats(self) -> tuple[int, float]:
        """(chunks, mean FTS5 tokens per chunk) of the keyword index: BM25's N and avgdl.

        Read from FTS5's own 'averages' record (row 1 of ``chunks_fts_data``: varints holding the
        row count, then each column's token total), which FTS5 keeps exact on every insert and
        delete; counting them would read the whole index on every query."""
        row = self.conn.execute("SELECT block FROM chunks_fts_data WHERE id = 1").fetchone()
        values, v = [], 0
        for byte in row[0] if row else b"":
            v = (v << 7) | (byte & 0x7F)
            if not byte & 0x80:
                values.append(v)
                v = 0
        if len(values) < 2 or values[0] == 0:
            return 0, 0.0
        return values[0], values[1] / values[0]

    def keyword_search(self, tokens: Sequence[str], n: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """Up to ``n`` (chunk id, BM25 score) pairs for the query's tokens (``keyword.query_tokens``),
        best first.

        FTS5 finds the chunks holding any token and orders them by its own bm25() (k1 = 1.2 and an
        idf that is zero for a word in half the chunks); the best ``n`` are scored again with
        Lucene's BM25 (``keyword.bm25``), query-term frequency included, from the whole index's
        statistics (filters do not change a chunk's score)."""
        total, avgdl = self.keyword_stats()
        counts = Counter(tokens)
        dfs = self.chunk_frequencies(counts)
        weights = {t: counts[t] * keyword.idf(dfs[t], total) for t in counts if dfs[t]}
        if not weights:
            return []
        # a token the query repeats is repeated in the expression: FTS5's bm25() adds each copy
        match = keyword.match_expression(t for t in tokens if t in weights)
        rows = self.conn.execute(*self._fts_query("SELECT h.id, t.c0 FROM ({}) h JOIN chunks_fts_content t ON t.id = h.id",
                                                  match, n, filters, "ORDER BY bm25(chunks_fts)"))
        scored = [(int(cid), keyword.bm25(text, weights, avgdl)) for cid, text in rows]
        return sorted(scored, key=lambda x: (-x[1], x[0]))[:n]

    def chunk_frequencies(self, tokens: Iterable[str]) -> dict[str, int]:
        """How many chunks hold each token (BM25's document frequency), over the whole index."""
        unique = list(dict.fromkeys(tokens))
        one = "(SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?)"
        dfs = [df for i in range(0, len(unique), 500)    # one statement per 500 tokens (SQLite's column limit)
               for df in self.conn.execute(f"SELECT {', '.join([one] * len(unique[i:i + 500]))}",
                                           [keyword.quote(t) for t in unique[i:i + 500]]).fetchone()]
        return dict(zip(unique, dfs))

    def phrase_search(self, tokens: Sequence[str], n: int, filters: Filters | None = None) -> list[int]:
        """Up to ``n`` ids of the chunks that hold the tokens one after the other, in id order."""
        rows = self.conn.execute(*self._fts_query("{}", keyword.phrase_expression(tokens), n, filters, ""))
        return [int(cid) for cid, in rows]

    @staticmethod
    def _fts_query(outer: str, match: str, limit: int, filters: Filters | None, order: str) -> tuple[str, list[Any]]:
        """``outer`` around the ids of up to ``limit`` chunks matching an FTS5 expression and the filters."""
        if filters is None or filters.empty:
            inner, args = f"SELECT rowid AS id FROM chunks_fts WHERE chunks_fts MATCH ? {order} LIMIT ?", [match, limit]
        else:
            where, fargs = _filter_sql(filters)
            inner = ("SELECT f.rowid AS id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid "
                     f"JOIN documents d ON d.id = c.document WHERE chunks_fts MATCH ? AND {where} {order} LIMIT ?")
            args = [match, *fargs, limit]
        return outer.format(inner), args

    def documents_by_id(self, doc_ids: Sequence[str]) -> dict[str, Document]:
        """The documents with these ids that exist, by id, each text rebuilt from its chunks.

        Only chunks are stored, so the text is exact wherever chunks meet or overlap; the white
        space the chunker left between two chunks comes back as the right number of newlines,
        then spaces, and white space after the last chunk is not kept."""
        rows: dict[str, tuple[Any, ...]] = {}
        chunks: dict[str, list[tuple[Any, ...]]] = {}
        for i in range(0, len(doc_ids), 500):
            part = [to_db(d) for d in doc_ids[i:i + 500]]
            q = ("SELECT d.doc_id, d.path, d.size, d.mtime_ns, d.sha256, d.metadata, c.text, c.start_char, "
                 "c.start_line, c.end_line FROM documents d LEFT JOIN chunks c ON c.document = d.id "
                 f"WHERE d.doc_id IN ({','.join('?' * len(part))}) ORDER BY d.id, c.start_char")
            for doc_id, *doc, text, start, first, last in self.conn.execute(q, part):
                rows[doc_id] = tuple(doc)
                if text is not None:
                    chunks.setdefault(doc_id, []).append((text, start, first, last))
        return {from_db(d): Document(from_db(d), _join_chunks(chunks.get(d, [])), from_db(path), size, mtime, sha,
                                     json.loads(meta))
                for d, (path, size, mtime, sha, meta) in rows.items()}

    # ---- reads for analyze/ (similar, duplicates, outliers, topics, map) -----------------------
    def analysis_chunks(self, filters: Filters | None = None, doc_ids: Sequence[str] | None = None,
                        chunk_ids: Sequence[int] | None = None) -> tuple[list[AnalysisChunk], np.ndarray]:
        """Chunks with their vectors, in document then chunk order: of the documents passing
        ``filters``, or only of ``doc_ids`` / ``chunk_ids`` when given. Analyses look at whole
        collections, so they read the vectors kept here rather than search the ANN index."""
        where, args = _filter_sql(filters or Filters())
        for table, column, values in (("wanted_docs", "d.doc_id", None if doc_ids is None else map(to_db, doc_ids)),
                                      ("wanted_chunks", "c.id", None if chunk_ids is None else map(int, chunk_ids))):
            if values is not None:       # an empty list selects nothing
                self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (v PRIMARY KEY) WITHOUT ROWID")
                self.conn.execute(f"DELETE FROM temp.{table}")
                self.conn.executemany(f"INSERT OR IGNORE INTO temp.{table} VALUES (?)", ((v,) for v in values))
                where += f" AND {column} IN (SELECT v FROM temp.{table})"
        rows = self.conn.execute(
            "SELECT c.id, d.doc_id, d.path, d.mtime_ns, d.metadata, c.ord, c.text, f.terms, e.vector "
            "FROM chunks c JOIN documents d ON d.id = c.document JOIN embeddings e ON e.text_hash = c.text_hash "
            f"LEFT JOIN chunks_fts f ON f.rowid = c.id WHERE {where} ORDER BY d.id, c.ord", args).fetchall()
        chunks = [AnalysisChunk(r[0], from_db(r[1]), from_db(r[2]), r[3], json.loads(r[4]), r[5], r[6], r[7] or "")
                  for r in rows]
        vectors = decode_vectors([r[8] for r in rows], self.dim, self.dtype) if rows else np.zeros((0, self.dim), np.float32)
        return chunks, vectors

    def term_document_counts(self, terms: Iterable[str]) -> dict[str, int]:
        """In how many chunks each keyword-index term occurs (for tf-idf weights)."""
        self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, row)")
        terms = list(dict.fromkeys(terms))
        out: dict[str, int] = {}
        for i in range(0, len(terms), 500):
            part = terms[i:i + 500]
            q = f"SELECT term, doc FROM temp.chunks_vocab WHERE term IN ({','.join('?' * len(part))})"
            out.update((t, int(n)) for t, n in self.conn.execute(q, part))
        return out

    def chunk_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def documents(self) -> Iterator[tuple[str, str, int]]:
        """(doc_id, source, number of chunks) of every document."""
        for doc_id, source, n in self.conn.execute(
                "SELECT d.doc_id, d.source, count(c.id) FROM documents d LEFT JOIN chunks c ON c.document = d.id "
                "GROUP BY d.id ORDER BY d.doc_id"):
            yield from_db(doc_id), source, n

    # ---- writes (inside ``write()``) ----------------------------------------------------------
    def put_document(self, doc: Document, source: str, chunks: Sequence[Chunk], terms: Sequence[Sequence[str]],
                     vectors: dict[bytes, np.ndarray], gen: int) -> list[tuple[int, bytes]]:
        """Insert or replace a document and its chunks; returns (chunk id, text hash) of the new chunks.

        ``terms`` are each chunk's keyword-index terms. Vectors of new texts are added to the
        embedding cache; the caller passes a vector for every chunk text the cache does not hold.
        """
        self.remove_documents([doc.id])
        cur = self.conn.execute(
            "INSERT INTO documents (doc_id, source, path, size, mtime_ns, sha256, metadata, gen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (to_db(doc.id), source, to_db(doc.path), doc.size, doc.mtime_ns, doc.sha256,
             json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True), gen))
        doc_row = cur.lastrowid
        self.cache_vectors(vectors)
        out = []
        for c in chunks:
            h = text_hash(c.text)
            cur = self.conn.execute(
                "INSERT INTO chunks (document, ord, text, text_hash, start_char, end_char, start_line, "
                "end_line, n_tokens, page, heading, gen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_row, c.ord, c.text, h, c.start_char, c.end_char, c.start_line, c.end_line, c.n_tokens,
                 c.page, c.heading, gen))
            out.append((int(cur.lastrowid), h))
        self.conn.executemany("INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)",
                              ((cid, " ".join(t)) for (cid, _), t in zip(out, terms)))
        return out

    def cache_vectors(self, vectors: dict[bytes, np.ndarray]) -> None:
        """Add vectors to the embedding cache (by text hash) ahead of the chunks that will use them,
        so work done for a document that is not committed yet survives a crash."""
        self.conn.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?)",
                              ((h, encode_vector(v, self.dtype)) for h, v in vectors.items()))

    def remove_documents(self, doc_ids: Iterable[str]) -> int:
        """Delete documents and their chunks (leaving tombstones); returns how many documents existed."""
        n = 0
        for doc_id in doc_ids:
            row = self.conn.execute("SELECT id FROM documents WHERE doc_id = ?", (to_db(doc_id),)).fetchone()
            if row:
                self.conn.execute("DELETE FROM chunks WHERE document = ?", (row[0],))
                self.conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
                n += 1
        return n

    def touch(self, doc_id: str, size: int, mtime_ns: int) -> None:
        """Record a new size/mtime for a file whose content hash did not change."""
        self.conn.execute("UPDATE documents SET size = ?, mtime_ns = ? WHERE doc_id = ?", (size, mtime_ns, to_db(doc_id)))

    def collect_garbage(self) -> None:
        """Drop cached vectors that no chunk uses any more."""
        self.conn.execute("DELETE FROM embeddings WHERE text_hash NOT IN (SELECT text_hash FROM chunks)")

    def prune_tombstones(self, through_gen: int) -> None:
        """Forget deletions that a saved vector index already reflects."""
        self.conn.execute("DELETE FROM tombstones WHERE gen <= ?", (through_gen,))
        self.conn.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'tombstones_pruned_through'",
                          (through_gen,))
