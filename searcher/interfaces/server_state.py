"""The server's shared state: the indexes it serves (a pool of reader ``Searcher``s and one writer
each), the background index jobs, the folder watchers and the request limits."""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import Searcher
from ..errors import LockedError, SearcherError
from ..watch import FolderWatcher, WatchRun
from .schemas import ApiError, JobOut

log = logging.getLogger("searcher.server")


@dataclass(frozen=True)
class Limits:
    max_query_chars: int = 2000
    max_k: int = 100
    max_batch: int = 256          # documents per POST /documents
    max_text_chars: int = 200_000  # characters per document text
    max_body_bytes: int = 4 * 2**20
    readers: int = 2              # read-only Searchers per index
    writer_wait: float = 30.0     # seconds a write waits for another write in this server before 409


@dataclass
class Job:
    id: str
    index: str
    folders: list[str]
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    summary: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    thread: threading.Thread | None = None

    def out(self) -> JobOut:
        return JobOut(id=self.id, index=self.index, status=self.status, status_url=f"/index/{self.id}",
                      started=self.started, finished=self.finished, folders=self.folders,
                      summary=self.summary, error=self.error)


class IndexHandle:
    """One index: a pool of reader ``Searcher``s and one writer ``Searcher`` behind a lock."""

    def __init__(self, name: str, path: Path, model: str | None, readers: int):
        self.name, self.path, self.model = name, path, model
        self._pool: queue.Queue[Searcher] = queue.Queue()
        for _ in range(max(1, readers)):
            self._pool.put(Searcher(path, model=model))
        self.writer = Searcher(path, model=model)
        self.write_lock = threading.Lock()
        self.last_run: dict[str, Any] | None = None     # the last index job's or watch run's, for GET /info

    @contextmanager
    def reader(self) -> Iterator[Searcher]:
        s = self._pool.get()
        try:
            yield s
        finally:
            self._pool.put(s)

    @contextmanager
    def writing(self, wait: float) -> Iterator[Searcher]:
        if not self.write_lock.acquire(timeout=wait):
            raise LockedError(f"index '{self.name}' is being written by another request (an index run?); "
                              "retry later")
        try:
            yield self.writer
        finally:
            self.write_lock.release()

    def close(self) -> None:
        while not self._pool.empty():
            self._pool.get_nowait().close()
        self.writer.close()


class State:
    def __init__(self, indexes: list[Path], folders: list[Path], token: str | None, limits: Limits,
                 model: str | None, rerankers: list[str], watch: list[Path] = ()):
        if not indexes:
            raise SearcherError("give at least one --index")
        self.handles: dict[str, IndexHandle] = {}
        for p in indexes:
            p = Path(p).expanduser().resolve()
            name = p.name
            if name in self.handles:
                raise SearcherError(f"two indexes named '{name}'; give index folders with different names")
            self.handles[name] = IndexHandle(name, p, model, limits.readers)
        self.default = next(iter(self.handles))
        self.folders = [Path(f).expanduser().resolve() for f in folders]
        for f in self.folders:
            if not f.exists():
                raise SearcherError(f"--folder {f}: no such file or folder")
        self.token = token
        self.limits = limits
        self.rerankers = set(rerankers)
        self.jobs: dict[str, Job] = {}
        self.jobs_lock = threading.Lock()
        self.watch = [Path(f).expanduser().resolve() for f in watch]
        for f in self.watch:
            if not f.is_dir():
                raise SearcherError(f"--watch {f}: no such folder")
        self.stop_watching = threading.Event()
        self.watchers: list[threading.Thread] = []

    def handle(self, name: str | None) -> IndexHandle:
        name = name or self.default
        if name not in self.handles:
            raise ApiError(404, f"no index named '{name}' on this server; choose one of: {', '.join(self.handles)}")
        return self.handles[name]

    def start_job(self, h: IndexHandle) -> Job:
        if not self.folders:
            raise ApiError(400, "this server was started without --folder; there is nothing to index")
        with self.jobs_lock:
            for job in self.jobs.values():
                if job.index == h.name and job.status in ("queued", "running"):
                    return job
            job = Job(uuid.uuid4().hex, h.name, [str(f) for f in self.folders])
            self.jobs[job.id] = job
            if len(self.jobs) > 100:   # keep the newest finished jobs only
                for old in [j for j in self.jobs.values() if j.status in ("done", "failed")][:-50]:
                    del self.jobs[old.id]
            job.thread = threading.Thread(target=self._run_job, args=(job, h), name=f"index-{job.id[:8]}",
                                          daemon=True)
            job.thread.start()
        return job

    def _run_job(self, job: Job, h: IndexHandle) -> None:
        job.status, job.started = "running", time.time()
        try:
            with h.writing(wait=24 * 3600):
                for folder in self.folders:
                    report = h.writer.index(folder)
                    job.summary.append({"folder": str(folder), **report.summary()})
                    h.last_run = {"kind": "index", "folder": str(folder), "finished": time.time(), "paths": None,
                                  "summary": report.summary(), "error": None}
            job.status = "done"
        except SearcherError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a job reports, never kills the server
            log.exception("index job %s failed", job.id)
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}"
        finally:
            job.finished = time.time()

    def start_watchers(self) -> None:
        """One thread per ``--watch`` folder, keeping the default index in step with it."""
        h = self.handles[self.default]
        for folder in self.watch:
            def apply(paths: list[Path] | None, folder: Path = folder) -> Any:
                with h.writing(wait=24 * 3600):
                    return h.writer.index(folder, paths=paths)

            def on_run(run: WatchRun, folder: Path = folder) -> None:
                h.last_run = {"kind": "watch", "folder": str(folder), "finished": run.started + run.seconds,
                              "paths": run.paths, "summary": run.report.summary() if run.report else None,
                              "error": run.error}
                if run.error:
                    log.warning("watch %s: %s", folder, run.error)

            watcher = FolderWatcher(folder, apply, exclude=h.path, on_run=on_run, stop=self.stop_watching,
                                    on_message=lambda message: log.warning("watch: %s", message))
            thread = threading.Thread(target=self._watch, args=(watcher,), name=f"watch-{folder.name}", daemon=True)
            thread.start()
            self.watchers.append(thread)

    @staticmethod
    def _watch(watcher: FolderWatcher) -> None:
        try:
            watcher.run()
        except Exception:  # a watcher that fails says so in the log; the server goes on serving
            log.exception("watching %s stopped", watcher.root)

    def stop_watchers(self, timeout: float) -> None:
        self.stop_watching.set()
        deadline = time.monotonic() + timeout
        for thread in self.watchers:
            thread.join(max(0.0, deadline - time.monotonic()))

    def wait_for_jobs(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for job in list(self.jobs.values()):
            if job.thread is not None and job.thread.is_alive():
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        for h in self.handles.values():
            h.close()
