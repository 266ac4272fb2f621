"""Keep an index in step with a folder: watch it (watchfiles: inotify, FSEvents, ReadDirectoryChangesW)
and re-read only the paths that changed.

Changes are debounced and batched by watchfiles (a batch ends after ``step_ms`` without a new event,
or ``debounce_ms`` after it started), so an editor's atomic save (write a temporary file, rename it
over the old one) is one batch and one run, and a burst of 1,000 new files is one or a few runs.
Each run goes through the ordinary write path (``Searcher.index_paths``): searches meanwhile see the
last committed state. A change to a ``.gitignore`` or ``.searcherignore`` re-checks the whole folder
(a full incremental run, which reads only files whose size or mtime changed).

Trouble never costs the index: a run that fails (disk full, index locked by another writer) is
rolled back by SQLite and retried later with its paths; a folder that vanishes is waited for, its
documents kept, and caught up with by a full run when it comes back.
"""
from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import SearcherError
from .ingest.walk import IGNORE_FILES, PathRules, WalkOptions
from .records import IndexReport

DEBOUNCE_MS = 1600        # longest a batch collects events
STEP_MS = 50              # a batch ends after this long without a new event
TICK_MS = 1000            # how often the loop wakes with nothing to do (checks the folder, retries)
RETRY_SECONDS = (2, 5, 15, 30, 60)   # waits before retrying a failed run


@dataclass(frozen=True)
class WatchRun:
    """One run of the watcher: the paths it re-read (None: the whole folder) and its report or error."""

    started: float
    seconds: float
    paths: int | None
    report: IndexReport | None = None
    error: str | None = None


# what a run does: index these paths of the folder (None: all of it), return the report
Apply = Callable[[list[Path] | None], IndexReport]


def _why_failed(exc: BaseException) -> str | None:
    """A one-line reason for a run failure worth retrying, or None for one that is a bug."""
    if isinstance(exc, SearcherError):
        return str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        return "the disk is full (SQLite: database or disk is full)"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full ({exc.strerror})"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return None


class FolderWatcher:
    """Watch ``folder`` and apply its changes with ``apply`` until ``stop`` is set (or Ctrl-C)."""

    def __init__(self, folder: Path, apply: Apply, *, options: WalkOptions | None = None,
                 exclude: Path | None = None, on_run: Callable[[WatchRun], None] = lambda r: None,
                 on_message: Callable[[str], None] = lambda m: None, stop: threading.Event | None = None,
                 debounce_ms: int = DEBOUNCE_MS, step_ms: int = STEP_MS):
        self.root = Path(folder).expanduser().resolve()
        self.apply, self.options = apply, options or WalkOptions()
        self.exclude = exclude.resolve() if exclude else None
        self.on_run, self.on_message = on_run, on_message
        self.stop = stop or threading.Event()
        self.debounce_ms, self.step_ms = debounce_ms, step_ms
        self._pending: set[Path] = set()
        self._full = True            # the first run checks the whole folder
        self._failures = 0
        self._retry_at = 0.0

    def run(self) -> None:
        """Watch until stopped. Raises SearcherError only if the folder is not a folder at the start."""
        import watchfiles

        if not self.root.is_dir():
            raise SearcherError(f"{self.root}: no such folder to watch")
        while not self.stop.is_set():
            if not self.root.is_dir():
                self._wait_for_folder()
                continue
            # the first run (and the one after the folder comes back) starts at the first tick, once
            # watching has begun, so that no change made during that run is missed
            for changes in watchfiles.watch(self.root, watch_filter=None, debounce=self.debounce_ms,
                                            step=self.step_ms, stop_event=self.stop, rust_timeout=TICK_MS,
                                            yield_on_timeout=True):
                if not self.root.is_dir():
                    break                        # the folder went away: its events are not applied
                self._collect({Path(p) for _, p in changes})
                self._flush()

    def _collect(self, paths: set[Path]) -> None:
        """Add a batch's paths to the pending set, dropping what the walk would not look at."""
        rules = PathRules(self.root, self.options)
        for p in paths:
            if self.exclude and (p == self.exclude or p.is_relative_to(self.exclude)):
                continue
            if not p.is_relative_to(self.root) or p == self.root:
                continue
            if p.name in IGNORE_FILES:
                self._full = True            # the rules changed: re-check every file
            elif not rules.excluded(p):
                self._pending.add(p)

    def _flush(self) -> None:
        """Run the pending changes, unless a failed run's retry time has not come yet."""
        if not (self._full or self._pending) or time.monotonic() < self._retry_at:
            return
        paths = None if self._full else sorted(self._pending)
        started = time.time()
        try:
            report = self.apply(paths)
        except Exception as exc:  # reported and retried; a bug is re-raised
            why = _why_failed(exc)
            if why is None:
                raise
            wait = RETRY_SECONDS[min(self._failures, len(RETRY_SECONDS) - 1)]
            self._failures += 1
            self._retry_at = time.monotonic() + wait
            self.on_run(WatchRun(started, time.time() - started, None if paths is None else len(paths),
                                 error=f"{why}; the index keeps its last commit; retrying in {wait} s"))
            return
        if paths is None:
            self._pending.clear()
        else:
            self._pending.difference_update(paths)
        self._full, self._failures, self._retry_at = False, 0, 0.0
        self.on_run(WatchRun(started, time.time() - started, None if paths is None else len(paths), report))

    def _wait_for_folder(self) -> None:
        self.on_message(f"{self.root} is gone; its documents stay in the index; waiting for it to come back")
        while not self.root.is_dir():
            if self.stop.wait(TICK_MS / 1000):
                return
        self.on_message(f"{self.root} is back; checking it")
        self._pending.clear()
        self._full = True
