"""One embedder's cover collection: batched writes, paginated reads, neighbour queries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coverlens.errors import StoreError
from coverlens.records import Hit

if TYPE_CHECKING:
    import numpy as np

# The metadata every stored cover carries (see `coverlens.indexer.plan.cover_metadata`).
METADATA_FIELDS = ("path", "genre", "genres", "split", "width", "height")


@dataclass
class StoredVectors:
    ids: list[str]
    vectors: np.ndarray  # (n, d) float32, L2-normalised as the embedder made them
    metadatas: list[dict[str, Any]]


def _chunks(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


class CoverCollection:
    """A Chroma collection of cover vectors made by one embedder identity."""

    def __init__(self, collection: Any, embedder: str, identity: dict[str, Any], max_batch: int) -> None:
        self._collection = collection
        self.name: str = collection.name
        self.embedder = embedder
        self.identity = identity
        self.max_batch = max(1, int(max_batch))

    def __repr__(self) -> str:
        return f"CoverCollection({self.name!r}, embedder={self.embedder!r})"

    def count(self) -> int:
        return int(self._collection.count())

    def _pages(self, include: list[str]) -> Iterator[dict[str, Any]]:
        """get() page by page: one call for a whole large collection would be one huge response."""
        offset = 0
        while True:
            page = self._collection.get(limit=self.max_batch, offset=offset, include=include)
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
            self._collection.upsert(ids=list(ids[part]), embeddings=vectors[part],
                                    metadatas=[_plain(m) for m in metadatas[part]])

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Replace the metadata of stored covers, keeping their vectors."""
        for part in _chunks(len(ids), self.max_batch):
            self._collection.update(ids=list(ids[part]), metadatas=[_plain(m) for m in metadatas[part]])

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for part in _chunks(len(ids), self.max_batch):
            self._collection.delete(ids=ids[part])

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
            answer = self._collection.query(query_embeddings=vectors[part], n_results=wanted, where=where,
                                            include=["metadatas", "distances"])
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
            pages = (self._collection.get(ids=wanted[part], include=include)
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
               genre=str(metadata.get("genre", "")), split=str(metadata.get("split", "")))
