"""The store: a Chroma client (embedded in the workspace, or a server) and its cover collections."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from coverlens.errors import StoreError
from coverlens.store.collection import CoverCollection
from coverlens.store.lock import WriterLock

if TYPE_CHECKING:
    from types import TracebackType

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


def describe_identity(identity: dict[str, Any]) -> str:
    """A one-line human description of a model identity (long hashes shortened)."""
    parts = []
    for key, value in sorted(identity.items()):
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        parts.append(f"{key}={text[:16] + '...' if len(text) > 40 else text}")
    return "{" + ", ".join(parts) + "}"


@dataclass
class CollectionInfo:
    name: str
    embedder: str
    identity: dict[str, Any]
    count: int


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
    """A Chroma client and the cover collections in it. Use as a context manager, or call close()."""

    def __init__(self, client: Any, location: str, lock: WriterLock | None = None) -> None:
        self.client = client
        self.location = location
        self._lock = lock

    @classmethod
    def open(cls, workspace: Workspace, *, url: str | None = None, writer: bool = False) -> CoverStore:
        """Open the embedded store at `workspace.store_dir`, or the Chroma server at `url`.

        `writer=True` takes the directory's writer lock first (embedded only: a server serialises
        its writers itself). Readers take no lock; see the package docstring.
        """
        if url:
            return cls(_http_client(url), url)
        directory = workspace.store_dir
        if not writer and not directory.is_dir():
            raise StoreError(f"no store in {directory}; run `coverlens index`")
        lock = WriterLock(directory).acquire() if writer else None
        try:
            import chromadb

            client = chromadb.PersistentClient(path=str(directory), settings=_settings())
        except Exception as exc:
            if lock is not None:
                lock.release()
            raise StoreError(f"cannot open the Chroma store in {directory}: {exc}") from exc
        return cls(client, str(directory), lock)

    def __enter__(self) -> CoverStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the client, then the writer lock (so no other writer starts on a live client)."""
        client, self.client = self.client, None
        try:
            if client is not None and hasattr(client, "close"):
                client.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    @property
    def writer(self) -> bool:
        return self._lock is not None and self._lock.held

    def _client(self) -> Any:
        if self.client is None:
            raise StoreError(f"the store {self.location} is closed")
        return self.client

    def _get(self, name: str) -> Any | None:
        from chromadb.errors import NotFoundError

        try:
            return self._client().get_collection(name, embedding_function=None)
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
        client = self._client()
        existing = self._get(name)
        if existing is not None and rebuild:
            client.delete_collection(name)
            existing = None
        if existing is None:
            if not (create or rebuild):
                raise StoreError(f"no index for {embedder_name} in {self.location}; run `coverlens index`")
            metadata = {"embedder": embedder_name, "identity": json.dumps(identity, sort_keys=True),
                        "coverlens_store": STORE_FORMAT}
            created = client.create_collection(name, configuration={"hnsw": dict(HNSW_CONFIGURATION)},
                                               metadata=metadata, embedding_function=None,
                                               get_or_create=True)
            return self._wrap(created, embedder_name, identity)
        stored = _stored_identity(existing)
        if stored != identity:
            raise StoreError(
                f"collection {name} in {self.location} holds vectors made by {describe_identity(stored)}, "
                f"but the {embedder_name} embedder now is {describe_identity(identity)}; the two are not "
                f"comparable: re-run `coverlens index --rebuild` (with `--embedder {embedder_name}` to "
                "rebuild only this one)"
            )
        return self._wrap(existing, embedder_name, identity)

    def _wrap(self, collection: Any, embedder_name: str, identity: dict[str, Any]) -> CoverCollection:
        return CoverCollection(collection, embedder_name, identity, self._client().get_max_batch_size())

    def list_collections(self) -> list[CollectionInfo]:
        """The cover collections in the store (others that share a server are left out)."""
        infos = []
        for collection in self._client().list_collections():
            if not collection.name.startswith(COLLECTION_PREFIX):
                continue
            metadata = collection.metadata or {}
            infos.append(CollectionInfo(
                name=collection.name,
                embedder=str(metadata.get("embedder", collection.name[len(COLLECTION_PREFIX):])),
                identity=_stored_identity(collection), count=collection.count(),
            ))
        return sorted(infos, key=lambda info: info.name)


def _stored_identity(collection: Any) -> dict[str, Any]:
    raw = (collection.metadata or {}).get("identity")
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {"unreadable identity": str(raw)}
