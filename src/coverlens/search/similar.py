"""Nearest-cover search for one image, and the KNN genre vote over the training covers.

Pure over its collaborators: `embedder` is any `Embedder`, `collection` anything with
`query(vectors, k, *, where=None) -> list[list[Hit]]` (a `coverlens.store.CoverCollection`, or a
fake in tests). Neither Chroma nor torch is imported here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from coverlens.embedders import Embedder, l2_normalise
from coverlens.errors import ArgumentError
from coverlens.records import Hit, Vote
from coverlens.search.vote import vote

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

TRAIN_SPLIT = {"split": "train"}
# Pages are cut from an answer of a fixed size (a multiple of this), ordered by similarity then id:
# asking the store for 6 and then for 11 neighbours can order tied covers (identical vectors)
# differently, and the pages would overlap. The store's HNSW search looks at 200 candidates
# either way, so a bigger answer costs next to nothing.
PAGE_BLOCK = 50


class QueryableCollection(Protocol):
    def query(self, vectors: np.ndarray, k: int, *, where: dict[str, Any] | None = None) -> list[list[Hit]]: ...


@dataclass
class SimilarResult:
    """One page of neighbours of a query cover."""

    hits: list[Hit]
    offset: int
    k: int
    query_id: str | None  # md5 of the query file's bytes (the catalog id), when known
    self_excluded: bool  # the query cover itself was in the store and was left out
    vector: np.ndarray | None = field(default=None, repr=False)  # the query embedding, for a vote


def content_id(data: bytes) -> str:
    """The id a cover has in the catalog and the store: md5 of its bytes."""
    return hashlib.md5(data).hexdigest()


def embed_one(image: Image.Image, embedder: Embedder) -> np.ndarray:
    """One image -> one L2-normalised (d,) float32 vector."""
    return l2_normalise(embedder.embed([image]))[0]


def nearest(
    vector: np.ndarray,
    collection: QueryableCollection,
    *,
    k: int,
    offset: int = 0,
    exclude_id: str | None = None,
    where: dict[str, Any] | None = None,
    block: int = 1,
) -> tuple[list[Hit], bool]:
    """The page [offset, offset + k) of neighbours of `vector`, leaving out `exclude_id`.

    Asks for one extra neighbour when `exclude_id` is given, so a page stays k long when the query
    cover is stored, and rounds the request up to a multiple of `block` (see PAGE_BLOCK). Ties go
    to the smaller id. Returns the page and whether `exclude_id` was found (and dropped).
    """
    if k < 1:
        raise ArgumentError(f"k must be at least 1, got {k}")
    if offset < 0:
        raise ArgumentError(f"offset must not be negative, got {offset}")
    wanted = k + offset + (1 if exclude_id else 0)
    asked = -(-wanted // block) * block
    [hits] = collection.query(vector.reshape(1, -1), asked, where=where)
    hits = sorted(hits, key=lambda hit: (-hit.similarity, hit.id))
    kept = [hit for hit in hits if hit.id != exclude_id] if exclude_id else hits
    found = len(kept) < len(hits)
    return kept[offset:offset + k], found


def similar_covers(
    image: Image.Image,
    embedder: Embedder,
    collection: QueryableCollection,
    *,
    k: int = 10,
    offset: int = 0,
    exclude_self: bool = True,
    query_id: str | None = None,
    vector: np.ndarray | None = None,
) -> SimilarResult:
    """Embed `image` and return its neighbours [offset, offset + k), best first.

    `query_id` (see `content_id`) identifies the query when it came from a file: with
    `exclude_self`, that cover is left out of the results if the store holds it. `vector`: the
    query's embedding when the caller already has it (see `search.one_pass`).
    """
    vector = embed_one(image, embedder) if vector is None else vector
    hits, found = nearest(vector, collection, k=k, offset=offset,
                          exclude_id=query_id if exclude_self else None, block=PAGE_BLOCK)
    return SimilarResult(hits=hits, offset=offset, k=k, query_id=query_id, self_excluded=found, vector=vector)


def vote_on_train(
    image_vector: np.ndarray,
    collection: QueryableCollection,
    k: int = 10,
    *,
    exclude_id: str | None = None,
    weighted: bool = True,
    overfetch: int = 4,
) -> Vote:
    """Similarity-weighted genre vote of the k nearest TRAIN covers; they are the vote's evidence.

    Only the training split votes, so a held-out cover is never judged by itself or its test
    neighbours; `exclude_id` also keeps a training cover from voting for itself. Chroma's filtered
    (`where`) queries are several times slower than plain ones, so this first asks for
    `overfetch * k` neighbours unfiltered and keeps the training ones; only when too few of those
    are training covers does it fall back to the filtered query.
    """
    if k < 1:  # checked here: the over-fetch below would name k * overfetch
        raise ArgumentError(f"vote k must be at least 1, got {k}")
    hits, _ = nearest(image_vector, collection, k=overfetch * k, exclude_id=exclude_id)
    train = [hit for hit in hits if hit.split == TRAIN_SPLIT["split"]]
    if len(train) < k and len(hits) == overfetch * k:
        train, _ = nearest(image_vector, collection, k=k, exclude_id=exclude_id, where=TRAIN_SPLIT)
    return vote(train[:k], weighted=weighted)


def hits_as_dicts(hits: Sequence[Hit], paths: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """JSON-able hits; `paths` (e.g. absolute ones) replace the stored relative paths when given."""
    rows = []
    for i, hit in enumerate(hits):
        rows.append({"id": hit.id, "similarity": round(float(hit.similarity), 6), "genre": hit.genre,
                     "split": hit.split, "path": paths[i] if paths is not None else hit.path})
    return rows
