"""Reference vectors already in the vector store, so evaluation need not embed the train split again.

`VectorSource` is a plain callable, so the runner can be tested with vectors handed in directly;
`chroma_vector_source` is the real one. Whatever it cannot use (no store yet, a collection made
by another model, a locked store) it reports in `note`, and the runner embeds instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coverlens.errors import CoverlensError

if TYPE_CHECKING:
    import numpy as np

    from coverlens.embedders import Embedder
    from coverlens.workspace import Workspace


@dataclass
class StoredReferences:
    ids: list[str]
    vectors: np.ndarray | None  # (len(ids), d) float32, L2-normalised; None when nothing was found
    note: str
    seconds: float = 0.0

    @classmethod
    def nothing(cls, note: str, seconds: float = 0.0) -> StoredReferences:
        return cls([], None, note, seconds)


VectorSource = Callable[["Embedder", Sequence[str]], StoredReferences]


def select(ids: Sequence[str], vectors: Any, wanted: Sequence[str], note: str,
           seconds: float) -> StoredReferences:
    """Keep the stored rows whose id is wanted, in `wanted` order."""
    import numpy as np

    from coverlens.embedders import l2_normalise

    where = {cover_id: row for row, cover_id in enumerate(ids)}
    found = [cover_id for cover_id in wanted if cover_id in where]
    if not found:
        return StoredReferences.nothing(f"{note}: none of the {len(wanted):,} train covers stored", seconds)
    matrix = np.asarray(vectors, dtype=np.float32)[[where[i] for i in found]]
    return StoredReferences(found, l2_normalise(matrix), f"{note}: {len(found):,} of {len(wanted):,} "
                         "train vectors read from the store", seconds)


def chroma_vector_source(workspace: Workspace, store: Any | None = None) -> VectorSource:
    """Read train vectors from the workspace's Chroma store, when it holds this embedder's collection.

    `store`: an open `CoverStore` to read from (the service's own client: one per store directory
    per process); None opens the workspace's embedded store for each read.
    """

    def read(embedder: Embedder, wanted: Sequence[str]) -> StoredReferences:
        started = time.perf_counter()
        if store is None and not workspace.store_dir.is_dir():
            return StoredReferences.nothing("no vector store yet (`coverlens index` fills it)")
        try:
            if store is not None:
                fetched = store.collection_for(embedder.name, embedder.identity).fetch(list(wanted))
            else:
                from coverlens.store import CoverStore

                with CoverStore.open(workspace) as opened:
                    fetched = opened.collection_for(embedder.name, embedder.identity).fetch(list(wanted))
        except ImportError as exc:
            return StoredReferences.nothing(f"the vector store cannot be imported ({exc})")
        except CoverlensError as exc:  # no collection, another model's vectors, unreadable store
            return StoredReferences.nothing(f"store not used ({exc})", time.perf_counter() - started)
        return select(fetched.ids, fetched.vectors, wanted, f"store collection {embedder.name}",
                      time.perf_counter() - started)

    return read
