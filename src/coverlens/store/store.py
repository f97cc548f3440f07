"""The store: a Chroma client (embedded in the workspace, or a server) and its cover collections."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from coverlens.errors import (
    CoverlensError,
    FileSystemError,
    NoSpaceError,
    ReadOnlyError,
    StoreError,
    from_os_error,
)
from coverlens.store.collection import CHANGED_KEY, INCOMPLETE_KEY, NEW_COLLECTION_REASON, CoverCollection
from coverlens.store.freshness import (
    Generation,
    SharedClient,
    acquire_shared,
    read_generation,
    release_shared,
    write_generation,
)
from coverlens.store.identity import check_identity, stored_identity
from coverlens.store.lock import store_lock

if TYPE_CHECKING:
    from types import TracebackType

    from coverlens.locks import WriterLock
    from coverlens.workspace import Workspace

COLLECTION_PREFIX = "covers-"
STORE_FORMAT = 1
# The space is fixed at creation, so it is always set explicitly. Measured on 23.5k real 1280-d
# covers (gray33, ImageNet mobilenet_v2): Chroma's default graph (16 neighbours, ef_construction 100)
# with a wider search beam (ef_search 200 instead of 100) gives top-10 recall 0.9985 (0.9975 with
# the default beam) at the default insert rate; 32 neighbours / ef_construction 200 reach 1.0 but
# halve the insert rate. See benchmarks/bench_index.py.
HNSW_CONFIGURATION: dict[str, Any] = {"space": "cosine", "ef_search": 200}


def collection_name(embedder_name: str) -> str:
    """`covers-<embedder>`; Chroma allows letters, digits, '.', '_' and '-' and an alphanumeric end."""
    name = f"{COLLECTION_PREFIX}{embedder_name}"
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,500}", embedder_name) or not name[-1].isalnum():
        raise StoreError(f"embedder name {embedder_name!r} cannot name a Chroma collection (use letters, "
                         "digits, '.', '_' or '-', ending with a letter or digit)")
    return name


def canonical_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """The identity as it reads back from JSON, so stored and current compare equal."""
    return json.loads(json.dumps(identity, sort_keys=True, default=str))


@dataclass
class CollectionInfo:
    name: str
    embedder: str
    identity: dict[str, Any]
    count: int
    incomplete: str | None = None  # why the collection is incomplete (an index run has not finished)
    changed: str | None = None  # when an index run last completed on it (ISO 8601)


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def _http_client(url: str) -> Any:
    import chromadb

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"Chroma server URL {url!r} is not of the form http://HOST:PORT")
    ssl = parts.scheme == "https"
    try:
        client = chromadb.HttpClient(host=parts.hostname, port=parts.port or (443 if ssl else 8000), ssl=ssl,
                                     settings=_settings())
        client.heartbeat()
    except Exception as exc:  # connection refused, DNS, TLS, HTTP errors: all mean "not reachable"
        raise StoreError(f"cannot reach the Chroma server at {url}: {exc}; is `chroma run` running there?") from exc
    return client


class CoverStore:
    """A Chroma client and the cover collections in it. Use as a context manager, or call close().

    Embedded stores are kept fresh: before each operation the store's generation file is checked
    (one stat) and the client reopened when another process changed the store (see `freshness`).
    """

    def __init__(self, client: Any, location: str, lock: WriterLock | None = None,
                 shared: SharedClient | None = None) -> None:
        self._own_client = client
        self.location = location
        self._lock = lock
        self._shared = shared
        self._closed = False

    @classmethod
    def open(cls, workspace: Workspace, *, url: str | None = None, writer: bool = False,
             command: str = "index") -> CoverStore:
        """Open the embedded store at `workspace.store_dir`, or the Chroma server at `url`.

        `writer=True` takes the directory's writer lock first (embedded only: a server serialises
        its writers itself). Readers take no lock; see the package docstring. A store that exists
        but cannot be opened (read-only disk, permissions) is a `FileSystemError`, never "not indexed".
        """
        if url:
            return cls(_http_client(url), url)
        directory = workspace.store_dir
        try:
            exists = directory.is_dir()
        except OSError as exc:
            raise from_os_error(exc, directory, "opening the store") from exc
        if not writer and not exists:
            raise StoreError(f"no store in {directory}; run `coverlens index`")
        lock = store_lock(directory).acquire(command) if writer else None
        try:
            shared = acquire_shared(directory, lambda: _persistent_client(directory), writer=writer)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(None, str(directory), lock, shared)

    def __enter__(self) -> CoverStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the client, then the writer lock (so no other writer starts on a live client)."""
        if self._closed:
            return
        self._closed = True
        client, self._own_client = self._own_client, None
        try:
            if self._shared is not None:
                release_shared(self._shared, writer=self._lock is not None)
            elif client is not None and hasattr(client, "close"):
                client.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    @property
    def client(self) -> Any:
        return None if self._closed else (self._shared.client if self._shared else self._own_client)

    @property
    def writer(self) -> bool:
        return self._lock is not None and self._lock.held

    @property
    def embedded(self) -> bool:
        return self._shared is not None

    def _client(self) -> Any:
        if self._closed:
            raise StoreError(f"the store {self.location} is closed")
        return self.client

    # -- freshness -------------------------------------------------------------------------------
    def check_fresh(self) -> bool:
        """Reopen the client when another process changed the store since; True when it did."""
        return self._shared.refresh() if self._shared is not None and not self._closed else False

    @property
    def epoch(self) -> int:
        """Moves at each reopen of the client: collection handles of an older epoch are re-fetched."""
        return self._shared.epoch if self._shared is not None else 0

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """Check freshness, then hold off resets while the block uses the client (it yields it)."""
        from chromadb.errors import ChromaError, NotFoundError

        self.check_fresh()
        try:
            if self._shared is None:
                yield self._client()
                return
            with self._shared.lock.reading():
                yield self._client()
        except NotFoundError:
            raise
        except ChromaError as exc:  # disk full, I/O errors, server errors: named, typed
            raise chroma_error(exc, self.location) from exc

    def bump_generation(self, reason: str) -> Generation | None:
        """Tell readers in other processes that the store changed (embedded stores; a server needs none)."""
        if self._shared is None:
            return None
        directory = self._shared.directory
        try:
            generation = write_generation(directory, reason)
        except OSError as exc:
            raise from_os_error(exc, directory, "writing the store generation") from exc
        self._shared.note_own_change()
        return generation

    def generation(self) -> Generation | None:
        return read_generation(self._shared.directory) if self._shared is not None else None

    def last_changed(self) -> str | None:
        """When an index run last changed the store (ISO 8601), or None if never recorded.

        Embedded: the generation file; server: the latest change recorded in the collections."""
        generation = self.generation()
        if generation is not None:
            return generation.changed
        changed = [info.changed for info in self.list_collections() if info.changed]
        return max(changed) if changed else None

    def incomplete(self) -> dict[str, str]:
        """Collection name -> why it is incomplete, for each collection an unfinished run left."""
        return {info.name: info.incomplete for info in self.list_collections() if info.incomplete}

    def _get(self, name: str) -> Any | None:
        from chromadb.errors import NotFoundError

        try:
            with self.reading() as client:
                return client.get_collection(name, embedding_function=None)
        except NotFoundError:
            return None
        except ValueError as exc:  # older clients said "does not exist" with a ValueError
            if "does not exist" in str(exc):
                return None
            raise

    def collection_for(self, embedder_name: str, identity: dict[str, Any], *, create: bool = False,
                       rebuild: bool = False) -> CoverCollection:
        """The collection of one embedder, checked against the identity of the model in use.

        `create` makes it when missing; `rebuild` deletes and recreates it (implies create).
        The identity is written with the collection in one call, so a collection created by a run
        killed a moment later still says which model filled it.
        """
        name = collection_name(embedder_name)
        identity = canonical_identity(identity)
        epoch = self.epoch  # read before the fetch: a handle of a client reset meanwhile is fetched again
        existing = self._get(name)
        if existing is not None and rebuild:
            with self.reading() as client:
                client.delete_collection(name)
            self.bump_generation(f"{name} rebuild started")
            existing = None
        if existing is None:
            if not (create or rebuild):
                raise StoreError(f"no index for {embedder_name} in {self.location}; run `coverlens index`")
            # marked incomplete from birth: a run killed before its end leaves it flagged
            metadata = {"embedder": embedder_name, "identity": json.dumps(identity, sort_keys=True),
                        "coverlens_store": STORE_FORMAT, INCOMPLETE_KEY: f"{NEW_COLLECTION_REASON} "
                        f"(started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}, pid {os.getpid()})"}
            with self.reading() as client:
                created = client.create_collection(name, configuration={"hnsw": dict(HNSW_CONFIGURATION)},
                                                   metadata=metadata, embedding_function=None,
                                                   get_or_create=True)
            return self._wrap(created, embedder_name, identity, epoch)
        check_identity(existing, identity, embedder_name, self.location)
        return self._wrap(existing, embedder_name, identity, epoch)

    def _wrap(self, collection: Any, embedder_name: str, identity: dict[str, Any], epoch: int) -> CoverCollection:
        with self.reading() as client:
            max_batch = client.get_max_batch_size()
        return CoverCollection(collection, embedder_name, identity, max_batch, store=self, epoch=epoch)

    def list_collections(self) -> list[CollectionInfo]:
        """The cover collections in the store (others that share a server are left out)."""
        infos = []
        with self.reading() as client:
            for collection in client.list_collections():
                if not collection.name.startswith(COLLECTION_PREFIX):
                    continue
                metadata = collection.metadata or {}
                infos.append(CollectionInfo(
                    name=collection.name,
                    embedder=str(metadata.get("embedder", collection.name[len(COLLECTION_PREFIX):])),
                    identity=stored_identity(collection), count=collection.count(),
                    incomplete=metadata.get(INCOMPLETE_KEY) or None, changed=metadata.get(CHANGED_KEY) or None,
                ))
        return sorted(infos, key=lambda info: info.name)


def _persistent_client(directory: Path) -> Any:
    """An embedded client; a store that exists but cannot be opened is named with the reason."""
    import chromadb

    try:
        return chromadb.PersistentClient(path=str(directory), settings=_settings())
    except OSError as exc:
        raise from_os_error(exc, directory, "opening the Chroma store") from exc
    except Exception as exc:  # sqlite and Rust errors arrive as chromadb's own types
        if not (_read_only(directory) or "readonly" in str(exc).replace("-", "").replace(" ", "").lower()):
            raise chroma_error(exc, str(directory), "opening the Chroma store") from exc
        raise ReadOnlyError(
            f"{directory}: read-only file system: the Chroma store cannot be opened (Chroma writes its "
            "database even to read it); make the workspace writable, copy it to a writable --workspace, "
            "or serve the store with `chroma run` and pass --chroma-url", str(directory)) from exc


def chroma_error(exc: Exception, location: str, doing: str = "using the store") -> CoverlensError:
    """A typed error for what Chroma (its SQLite, its Rust core, a server) raised.

    SQLite reports a write refused by a full disk or a file size limit as "disk I/O error" as often
    as "database or disk is full", so the free space decides which of the two it was."""
    text = str(exc)
    plain = text.lower()
    if "disk is full" in plain or "no space" in plain or _low_on_space(location):
        return NoSpaceError(f"{location}: no space left on the disk while {doing} ({text}); free some space and "
                            "re-run the same command: what was stored before is kept", location)
    if "readonly" in plain.replace("-", "").replace(" ", "") or _read_only(Path(location)):
        return ReadOnlyError(f"{location}: read-only file system while {doing}; make the workspace writable "
                             "or copy it to a writable --workspace", location)
    if "disk i/o error" in plain:
        return FileSystemError(f"{location}: disk I/O error while {doing} ({text}); check the free space "
                               "(`df -h`), the file size limit (`ulimit -f`) and the disk, then re-run the same "
                               "command: what was stored before is kept", location)
    return StoreError(f"{location}: Chroma failed while {doing}: {text}")


def _low_on_space(location: str, margin: int = 16 * 2**20) -> bool:
    try:
        info = os.statvfs(location)
    except (OSError, ValueError):
        return False
    return info.f_bavail * info.f_frsize < margin


def _read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False
