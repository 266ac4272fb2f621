"""The single-writer lock: an advisory ``flock`` on ``write.lock`` in the index folder.

The kernel drops the lock when its process dies, however it dies (even ``kill -9``), so a lock
left by a dead process is never stale; the pid written into the file names the holder in the
error a second writer gets. Readers never take it. Taking the lock also deletes the temporary files
a dead writer left (a run killed during the ONNX export leaves two of 40-90 MB): only names of the
index's own temporary files, and only when the pid in the name is no longer running.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import time
from pathlib import Path
from types import TracebackType

from ..errors import LockedError, SearcherError

LOCK_FILE = "write.lock"
# the temporary files a writer makes, named with its pid: the ONNX export (embed/onnx.py), the manifest
# (config.py) and the vector files (store/faiss_index.py), each renamed into place once written
_TEMP = re.compile(r"\.(?:encoder\.onnx|encoder\.tokenizer\.json|manifest\.json|(?:vectors|images)\.g\d+\.(?:faiss|json))"
                   r"\.(\d+)\.tmp")


class WriterLock:
    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:   # a read-only file system or folder
            raise SearcherError(f"{self.path.parent}: cannot write to the index folder ({exc.strerror}); give "
                                "searcher write access to it, or index into another folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockedError(f"{self.path.parent}: another process{holder} is writing to this index; "
                              "wait for it to finish or stop it, then retry") from None
        try:    # the pid only names the holder in another writer's error: a full disk must not leak the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode(), 0)
        except OSError:
            pass
        self._fd = fd
        remove_dead_writers_files(self.path.parent)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def remove_dead_writers_files(folder: Path) -> list[Path]:
    """Delete the temporary files in ``folder`` whose writer (the pid in their name) is gone;
    returns them. Called with the lock held, so no live writer of this index is making any."""
    removed = []
    for entry in os.scandir(folder):
        m = _TEMP.fullmatch(entry.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # running, under another user
        return True
    return True


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" (pid {info['pid']}, since {time.strftime('%H:%M:%S', time.localtime(info['since']))})"
    except (ValueError, KeyError, OSError):
        return ""
