"""The single-writer lock: an advisory ``flock`` on ``write.lock`` in the index folder.

The kernel drops the lock when its process dies, however it dies (even ``kill -9``), so a lock
left by a dead process is never stale; the pid written into the file only names the holder in
the error a second writer gets. Readers never take it.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType

from ..errors import LockedError

LOCK_FILE = "write.lock"


class WriterLock:
    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" (pid {info['pid']}, since {time.strftime('%H:%M:%S', time.localtime(info['since']))})"
    except (ValueError, KeyError, OSError):
        return ""
