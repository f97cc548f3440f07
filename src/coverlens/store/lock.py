"""The writer lock of an embedded store directory: one writing process at a time.

`fcntl.flock` locks belong to the open file, so the kernel drops them when the process dies
(even by kill -9): a stale lock file never blocks the next run. The file is never deleted, which
would race with a process that has just opened it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from coverlens.errors import StoreError

LOCK_NAME = "coverlens-writer.lock"


class WriterLock:
    """An exclusive, non-blocking lock on `<store dir>/coverlens-writer.lock`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self) -> WriterLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreError(
                f"store {self.directory} is already opened by another writing process (pid {holder}); "
                "wait for it or use a Chroma server (--chroma-url)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None
