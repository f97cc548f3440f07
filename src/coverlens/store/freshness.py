"""Fresh reads of an embedded store that another process writes.

An embedded Chroma client caches the HNSW segment it loaded: a reader process never sees another
process's later writes, and even a new client in the same process reuses the cached system
(chroma issue #3792). So every index run that changes the store writes a *generation* file
(`store/coverlens-generation.json`, atomically: temp file + os.replace) and every reader checks it
before each operation with one `os.stat`. When it changed, and the change came from another
process, the process's one client of that directory is closed (Chroma stops its system once the
last client closes) and reopened: the next query reads the new state. A run that has only started
(`RUN_STARTED`) needs no reopen: the handles are fetched again, which reads the flags it set.

In one process all `CoverStore`s of a directory share one client (`SharedClient`): they see each
other's writes directly, and a reset reopens it for all of them at once. A reset waits for the
operations in flight (a readers-writer lock), so no thread queries a client being closed. In
server mode (`HttpClient`) there is no cache to reset: the server is the truth.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATION_FILE = "coverlens-generation.json"
# The generation an index run writes before its first vector: it changed the collections' flags
# (incomplete) and, with --rebuild, which collections exist, but no stored vector yet. Readers then
# fetch their collection handles again (fresh flags; a rebuilt collection is loaded from disk, never
# cached here) and keep their client: no reopen, so no reload of the vectors they hold.
RUN_STARTED = "index run started"
# What a running index writes every `PUBLISH_EVERY_S` seconds: readers in other processes reopen and
# see the covers stored so far (flagged incomplete) instead of the store as it was when the run began.
RUN_PROGRESS = "index run in progress"
PUBLISH_EVERY_S = 30.0  # a reader's reopen costs ~0.2 s plus loading what it has not seen: at most this often


@dataclass(frozen=True)
class Generation:
    id: str
    changed: str  # local time, ISO 8601
    pid: int  # the process that wrote it
    reason: str


def generation_path(directory: Path) -> Path:
    return directory / GENERATION_FILE


def write_generation(directory: Path, reason: str) -> Generation:
    """A new generation of the store in `directory`, written atomically."""
    from coverlens.workspace import write_json_atomic

    generation = Generation(uuid.uuid4().hex, time.strftime("%Y-%m-%dT%H:%M:%S%z"), os.getpid(), reason)
    write_json_atomic(generation_path(directory), generation.__dict__)
    return generation


def read_generation(directory: Path) -> Generation | None:
    try:
        raw = json.loads(generation_path(directory).read_text(encoding="utf-8"))
        return Generation(str(raw["id"]), str(raw["changed"]), int(raw["pid"]), str(raw.get("reason", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def generation_stamp(directory: Path) -> tuple[int, int, int] | None:
    """What changes whenever the generation file is replaced (inode, mtime, size): one stat."""
    try:
        info = os.stat(generation_path(directory))
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


class ReadWriteLock:
    """Many readers or one writer; a waiting writer stops new readers (no starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0
        self._mine = threading.local()  # read depth of the current thread: nested reads never wait

    @property
    def reading_here(self) -> bool:
        return getattr(self._mine, "depth", 0) > 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        if self.reading_here:
            self._mine.depth += 1
            try:
                yield
            finally:
                self._mine.depth -= 1
            return
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        self._mine.depth = 1
        try:
            yield
        finally:
            self._mine.depth = 0
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class SharedClient:
    """The one embedded Chroma client of a store directory in this process."""

    def __init__(self, directory: Path, factory: Callable[[], Any]) -> None:
        self.directory = directory
        self._factory = factory
        self.stamp = generation_stamp(directory)  # taken before opening: a change meanwhile resets once more
        self.client: Any = factory()
        self.users = 0
        self.writers = 0  # writer stores of this process: their writes are ours, never reset under them
        self.epoch = 0  # bumped at each reset; collections re-fetch their handle when it moved
        self.resets = 0
        self.lock = ReadWriteLock()
        self._refresh_guard = threading.Lock()

    def refresh(self) -> bool:
        """Reopen the client if another process changed the store since; True when it did."""
        stamp = generation_stamp(self.directory)
        if stamp == self.stamp or self.lock.reading_here:  # mid-operation: the next one refreshes
            return False
        with self._refresh_guard:
            if stamp == self.stamp:
                return False
            generation = read_generation(self.directory)
            self.stamp = stamp
            if self.writers or (generation is not None and generation.pid == os.getpid()):
                return False  # our own writes: this process's client already holds them
            if generation is not None and generation.reason == RUN_STARTED:
                self.epoch += 1  # handles are fetched again; the client stays
                return True
            with self.lock.writing():
                self._reopen()
            return True

    def note_own_change(self) -> None:
        """After this process wrote the generation file: nothing to reload here."""
        self.stamp = generation_stamp(self.directory)

    def _reopen(self) -> None:
        from chromadb.api.shared_system_client import SharedSystemClient

        old, self.client = self.client, None
        identifier = str(self.directory)
        try:
            old.close()
        finally:
            if identifier in SharedSystemClient._identifier_to_system:
                # another client of this directory (not ours) keeps the cached system alive
                SharedSystemClient.clear_system_cache()
            self.client = self._factory()
            self.epoch += 1
            self.resets += 1

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and hasattr(client, "close"):
            client.close()


_shared: dict[str, SharedClient] = {}
_shared_guard = threading.Lock()


def acquire_shared(directory: Path, factory: Callable[[], Any], *, writer: bool = False) -> SharedClient:
    """The directory's shared client (opened by `factory` if this process has none), one more user."""
    key = str(directory)
    with _shared_guard:
        shared = _shared.get(key)
        if shared is None:
            shared = SharedClient(directory, factory)
            _shared[key] = shared
        shared.users += 1
        shared.writers += int(writer)
        return shared


def release_shared(shared: SharedClient, *, writer: bool = False) -> None:
    with _shared_guard:
        shared.users -= 1
        shared.writers -= int(writer)
        if shared.users > 0:
            return
        _shared.pop(str(shared.directory), None)
    shared.close()
