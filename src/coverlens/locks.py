"""Writer locks: one writing command per workspace (and per embedded store) at a time.

`fcntl.flock` locks belong to the open file, so the kernel drops them when the process dies (even
by kill -9): a stale lock file never blocks the next run. The file holds "command, pid, since" of
the holder so that a second writer is told who is busy; it is never deleted, which would race
with a process that has just opened it.

Within one process a lock is re-entrant for the thread that holds it (a job that indexes may call
another writer step), while another thread of the same process is refused like another process
(the app's two background jobs must not write at once).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from coverlens.errors import BusyError, from_os_error

if TYPE_CHECKING:
    from coverlens.workspace import Workspace

WORKSPACE_LOCK_NAME = "writer.lock"

_held: dict[str, tuple[int, int, IO[str]]] = {}  # lock path -> (thread id, depth, open file)
_held_guard = threading.Lock()


@dataclass(frozen=True)
class Holder:
    command: str
    pid: int
    since: str  # local time, ISO 8601

    def describe(self) -> str:
        return f"{self.command}, pid {self.pid}, since {self.since}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = [p.strip() for p in text.strip().split("\t")]
        if len(parts) == 3 and parts[1].isdigit():
            return cls(parts[0], int(parts[1]), parts[2])
        if len(parts) == 1 and parts[0].isdigit():  # lock files of older versions held the pid only
            return cls("unknown command", int(parts[0]), "unknown time")
        return None


class WriterLock:
    """An exclusive, non-blocking lock on `path`; `what` names the thing locked in messages."""

    def __init__(self, path: Path, what: str, hint: str = "wait for it to finish (or stop it), then re-run",
                 *, reentrant: bool = True) -> None:
        self.path = path
        self.what = what
        self.hint = hint
        self.reentrant = reentrant
        self._key = str(path.absolute())
        self._mine = False

    def acquire(self, command: str) -> WriterLock:
        me = threading.get_ident()
        with _held_guard:
            held = _held.get(self._key)
            if held is not None and held[0] == me and self.reentrant:
                _held[self._key] = (me, held[1] + 1, held[2])
                self._mine = True
                return self
            if held is not None:  # another thread of this process (or this one, not re-entrant)
                raise BusyError(self._busy(self._read_holder(held[2])))
            handle = self._open()
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read_holder(handle)
                handle.close()
                raise BusyError(self._busy(holder)) from None
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{command}\t{os.getpid()}\t{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
                handle.flush()
            except OSError as exc:
                handle.close()
                raise from_os_error(exc, self.path, f"taking the writer lock of {self.what}") from exc
            _held[self._key] = (me, 1, handle)
            self._mine = True
            return self

    def release(self) -> None:
        if not self._mine:
            return
        self._mine = False
        with _held_guard:
            thread, depth, handle = _held[self._key]
            if depth > 1:
                _held[self._key] = (thread, depth - 1, handle)
                return
            del _held[self._key]
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()

    @property
    def held(self) -> bool:
        return self._mine

    def holder(self) -> Holder | None:
        """Who holds the lock now (None: nobody). Takes nothing: for status displays."""
        with _held_guard:
            held = _held.get(self._key)
            if held is not None:
                return self._read_holder(held[2])
        try:
            handle = open(self.path, encoding="utf-8")
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._read_holder(handle) or Holder("unknown command", 0, "unknown time")
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None

    def _open(self) -> IO[str]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise from_os_error(exc, self.path, f"taking the writer lock of {self.what}") from exc

    def _read_holder(self, handle: IO[str]) -> Holder | None:
        try:
            handle.seek(0)
            return Holder.parse(handle.read())
        except (OSError, ValueError):
            return None

    def _busy(self, holder: Holder | None) -> str:
        who = holder.describe() if holder else "another process"
        return f"{self.what} is busy: {who}; {self.hint}"


def workspace_lock(workspace: Workspace) -> WriterLock:
    return WriterLock(workspace.root / WORKSPACE_LOCK_NAME, f"workspace {workspace.root}")


@contextmanager
def workspace_writer(workspace: Workspace, command: str) -> Iterator[WriterLock]:
    """Hold the workspace's writer lock for the block, or raise `BusyError` at once
    ("workspace W is busy: index, pid N, since T; ...")."""
    workspace.check_path()
    lock = workspace_lock(workspace).acquire(command)
    try:
        yield lock
    finally:
        lock.release()


def workspace_busy(workspace: Workspace) -> Holder | None:
    """The command writing the workspace now, if any (for the app's status)."""
    return workspace_lock(workspace).holder()
