"""The files the last index run of each folder skipped, and why: the ``skipped`` table.

``searcher info --files`` shows them next to what is indexed. Each run replaces the rows at or
below the folder it indexed, in one transaction after its last content commit (so a run that is
killed before the end leaves the previous run's list). The table is created on first use, so
indexes made before it existed gain it on their next run. See docs/format.md.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from ..records import FileReport
from .pathtext import from_db, to_db

_DDL = """CREATE TABLE IF NOT EXISTS skipped (
    path   TEXT PRIMARY KEY,   -- the file (or folder) that was not indexed
    reason TEXT NOT NULL,      -- the one-line reason, as the run reported it
    kind   TEXT,               -- the reader for its type; NULL for types searcher does not read
    failed INTEGER NOT NULL,   -- 1: a file of a type we read that could not be read
    time   REAL NOT NULL       -- when the run that skipped it ended (Unix seconds)
)"""


def record(conn: sqlite3.Connection, roots: str | Iterable[str], reports: Iterable[FileReport]) -> None:
    """Replace the skipped files at or below ``roots`` (the folder a run indexed, or the paths a
    watcher re-read) with this run's; call inside a write transaction."""
    conn.execute(_DDL)
    for root in [roots] if isinstance(roots, str) else roots:
        prefix = to_db(root.rstrip("/") + "/")
        conn.execute("DELETE FROM skipped WHERE path = ? OR substr(path, 1, ?) = ?",
                     (to_db(root), len(prefix), prefix))
    now = time.time()
    conn.executemany(
        "INSERT OR REPLACE INTO skipped (path, reason, kind, failed, time) VALUES (?, ?, ?, ?, ?)",
        ((to_db(f.path), f.reason or "", f.kind, int(f.failed), now)
         for f in reports if f.status == "skipped" or f.failed))


def skipped(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every recorded skip, by path."""
    try:
        rows = conn.execute("SELECT path, reason, kind, failed, time FROM skipped ORDER BY path").fetchall()
    except sqlite3.OperationalError:
        return []   # an index that no run has written the table to yet
    return [{"path": from_db(p), "reason": r, "kind": k, "failed": bool(f), "time": t} for p, r, k, f, t in rows]
