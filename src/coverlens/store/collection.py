"""One embedder's cover collection: batched writes, paginated reads, neighbour queries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from coverlens.errors import StoreError
from coverlens.records import Hit
from coverlens.store.identity import check_identity

if TYPE_CHECKING:
    import numpy as np


class StoreHandle(Protocol):
    """What a collection needs of its store (`store.CoverStore`), named here so the two modules do
    not import each other."""

    location: str

    @property
    def epoch(self) -> int: ...

    def reading(self) -> AbstractContextManager[None]: ...

    def _get(self, name: str) -> Any: ...


T = TypeVar("T")

# The metadata every stored cover carries (see `coverlens.indexer.plan.cover_metadata`).
METADATA_FIELDS = ("path", "genre", "genres", "split", "width", "height")
# Collection metadata: why the collection is incomplete (absent: complete), and when a run last completed.
INCOMPLETE_KEY = "coverlens_incomplete"
CHANGED_KEY = "coverlens_changed"
NEW_COLLECTION_REASON = "created by an index run that has not finished"


@dataclass
class StoredVectors:
    ids: list[str]
    vectors: np.ndarray  # (n, d) float32, L2-normalised as the embedder made them
    metadatas: list[dict[str, Any]]


def _chunks(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


class CoverCollection:
    """A Chroma collection of cover vectors made by one embedder identity.

    Each operation first lets its store check that no other process changed the store (see
    `coverlens.store.freshness`); after a reset, or a rebuild that replaced the collection, the
    Chroma handle is fetched again by name, and checked again against the identity.
    """

    def __init__(self, collection: Any, embedder: str, identity: dict[str, Any], max_batch: int,
                 store: StoreHandle | None = None, epoch: int | None = None) -> None:
        self._collection = collection
        self.name: str = collection.name
        self.embedder = embedder
        self.identity = identity
        self.max_batch = max(1, int(max_batch))
        self._store = store
        # the store's epoch before `collection` was fetched: a reset since (another thread) refetches it
        self._epoch = epoch if epoch is not None else store.epoch if store is not None else 0

    def __repr__(self) -> str:
        return f"CoverCollection({self.name!r}, embedder={self.embedder!r})"

    @contextmanager
    def _live(self) -> Iterator[Any]:
        """The Chroma collection, fresh, held against resets for the block."""
        if self._store is None:
            yield self._collection
            return
        with self._store.reading():
            if self._store.epoch != self._epoch:
                self._refetch()
            yield self._collection

    def _refetch(self) -> None:
        assert self._store is not None
        found = self._store._get(self.name)
        if found is None:
            raise StoreError(f"{self.name} is no longer in {self._store.location}: an `index --rebuild` may be "
                             "under way; retry when it has finished")
        check_identity(found, self.identity, self.embedder, self._store.location)
        self._collection, self._epoch = found, self._store.epoch

    def _call(self, operation: Callable[[Any], T]) -> T:
        """Run `operation(chroma collection)`; once more on a re-fetched handle when the collection was
        replaced meanwhile (a rebuild, in this process or on a Chroma server)."""
        from chromadb.errors import NotFoundError

        with self._live() as collection:
            try:
                return operation(collection)
            except NotFoundError:
                if self._store is None:
                    raise
                self._refetch()
                return operation(self._collection)

    def count(self) -> int:
        return int(self._call(lambda c: c.count()))

    def load(self) -> None:
        """Load the stored vectors into this process's index now: after a reopen, the first query
        does it (and catches up with what another process wrote), so a search need not wait for it."""
        def first_query(collection: Any) -> None:
            sample = collection.get(limit=1, include=["embeddings"])
            if len(sample["ids"]):
                collection.query(query_embeddings=sample["embeddings"][:1], n_results=1, include=[])

        self._call(first_query)

    # -- complete or flagged ---------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any]:
        """The collection's metadata as stored now (a handle's copy may be older)."""
        if self._store is None:
            return dict(self._collection.metadata or {})
        fresh = self._store._get(self.name)  # checks freshness first
        return dict((fresh if fresh is not None else self._collection).metadata or {})

    @property
    def incomplete_reason(self) -> str | None:
        """Why the collection is incomplete (an index run started and has not finished), or None."""
        return self._metadata().get(INCOMPLETE_KEY) or None

    @property
    def is_complete(self) -> bool:
        return self.incomplete_reason is None

    @property
    def last_changed(self) -> str | None:
        """When an index run last completed on this collection (ISO 8601)."""
        return self._metadata().get(CHANGED_KEY) or None

    def mark_incomplete(self, reason: str) -> None:
        """Flag the collection before a run's first write; `mark_complete` at its end clears it."""
        self._set_metadata({INCOMPLETE_KEY: reason})

    def mark_complete(self) -> None:
        self._set_metadata({INCOMPLETE_KEY: None, CHANGED_KEY: time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def _set_metadata(self, changes: dict[str, Any]) -> None:
        """Chroma's `modify(metadata=)` replaces the whole metadata: merge into what is stored."""
        merged = {k: v for k, v in {**self._metadata(), **changes}.items() if v is not None}
        self._call(lambda c: c.modify(metadata=merged))

    def _pages(self, include: list[str]) -> Iterator[dict[str, Any]]:
        """get() page by page: one call for a whole large collection would be one huge response."""
        with self._live():  # one state for all pages: no reset between two of them
            yield from self._pages_unlocked(include)

    def _pages_unlocked(self, include: list[str]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._call(lambda c, o=offset: c.get(limit=self.max_batch, offset=o, include=include))
            if not page["ids"]:
                return
            yield page
            offset += len(page["ids"])

    def ids(self) -> set[str]:
        return {i for page in self._pages([]) for i in page["ids"]}

    def metadatas(self) -> dict[str, dict[str, Any]]:
        """id -> metadata of every stored cover, without the vectors (cheap: used to plan updates)."""
        return {i: dict(m or {}) for page in self._pages(["metadatas"])
                for i, m in zip(page["ids"], page["metadatas"], strict=True)}

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        """Insert or replace (never `add`: it silently ignores ids already stored), in batches."""
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float32)
        if not (len(ids) == len(vectors) == len(metadatas)):
            raise StoreError(f"{self.name}: upsert of {len(ids)} ids, {len(vectors)} vectors, "
                             f"{len(metadatas)} metadatas")
        if len(set(ids)) != len(ids):
            raise StoreError(f"{self.name}: duplicate ids in one upsert")
        for part in _chunks(len(ids), self.max_batch):
            self._call(lambda c, p=part: c.upsert(ids=list(ids[p]), embeddings=vectors[p],
                                                   metadatas=[_plain(m) for m in metadatas[p]]))

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Replace the metadata of stored covers, keeping their vectors."""
        for part in _chunks(len(ids), self.max_batch):
            self._call(lambda c, p=part: c.update(ids=list(ids[p]), metadatas=[_plain(m) for m in metadatas[p]]))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for part in _chunks(len(ids), self.max_batch):
            self._call(lambda c, p=part: c.delete(ids=ids[p]))

    def query(self, vectors: np.ndarray, k: int, *, where: dict[str, Any] | None = None,
              exclude_ids: set[str] | None = None) -> list[list[Hit]]:
        """The k nearest stored covers of each query vector, closest first.

        Excluded ids (e.g. the query cover itself) are asked for on top of k and dropped, so each
        list still has k hits when the collection holds that many others.
        """
        import numpy as np

        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        exclude = exclude_ids or set()
        wanted = k + len(exclude)  # Chroma returns fewer when it holds fewer
        if k <= 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        results: list[list[Hit]] = []
        for part in _chunks(len(vectors), self.max_batch):
            answer = self._call(lambda c, p=part: c.query(query_embeddings=vectors[p], n_results=wanted,
                                                          where=where, include=["metadatas", "distances"]))
            for ids, distances, metadatas in zip(answer["ids"], answer["distances"], answer["metadatas"],
                                                 strict=True):
                hits = [_hit(i, d, m) for i, d, m in zip(ids, distances, metadatas, strict=True)
                        if i not in exclude]
                results.append(hits[:k])
        return results

    def fetch(self, ids: Sequence[str] | None = None) -> StoredVectors:
        """Stored vectors and metadata: all of them (ids None), or the given ids in the given order.

        Ids that are not stored are left out (compare `result.ids` with what was asked).
        """
        import numpy as np

        include = ["embeddings", "metadatas"]
        if ids is None:
            pages: Iterator[dict[str, Any]] = self._pages(include)
        else:
            wanted = list(dict.fromkeys(ids))
            pages = (self._call(lambda c, p=part: c.get(ids=wanted[p], include=include))
                     for part in _chunks(len(wanted), self.max_batch))
        found_ids: list[str] = []
        blocks: list[np.ndarray] = []
        metadatas: list[dict[str, Any]] = []
        for page in pages:
            embeddings = page["embeddings"]
            if embeddings is None or len(page["ids"]) == 0:  # numpy arrays: never test truthiness
                continue
            found_ids.extend(page["ids"])
            blocks.append(np.asarray(embeddings, dtype=np.float32))
            metadatas.extend(dict(m or {}) for m in page["metadatas"])
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.float32)
        if ids is not None:  # Chroma answers get(ids=...) in its own order
            position = {i: n for n, i in enumerate(found_ids)}
            order = [position[i] for i in dict.fromkeys(ids) if i in position]
            found_ids = [found_ids[n] for n in order]
            vectors = vectors[order] if len(order) else vectors
            metadatas = [metadatas[n] for n in order]
        return StoredVectors(ids=found_ids, vectors=vectors, metadatas=metadatas)


def _plain(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma accepts only Python str/int/float/bool: unwrap numpy scalars, drop None."""
    plain = {}
    for key, value in metadata.items():
        if value is None:
            continue
        plain[key] = value.item() if hasattr(value, "item") else value
    return plain


def _hit(cover_id: str, distance: float, metadata: dict[str, Any] | None) -> Hit:
    metadata = metadata or {}
    return Hit(id=cover_id, similarity=1.0 - float(distance), path=str(metadata.get("path", "")),
               genre=str(metadata.get("genre", "")), split=str(metadata.get("split", "")),
               source=str(metadata.get("source") or "file"))
