"""Everything Chroma: the client (embedded or server), one collection per embedder, batches, queries.

`CoverStore.open(workspace)` opens the embedded store in the workspace (or a Chroma server with
`url=`); `store.collection_for(embedder.name, embedder.identity)` gives the `CoverCollection` that
holds that embedder's vectors, refusing one filled by another model.

Concurrency: an embedded store directory may be written by one process at a time. Writers
(`writer=True`, e.g. `coverlens index`) take an exclusive lock file in the store directory and a
second writer is refused at once. Readers (search, clusters, the app) take no lock: reading while
another process writes the same directory is not safe with embedded Chroma, so run a Chroma server
(`chroma run --path DIR`) and pass its URL (`--chroma-url`) when several processes share a store.

Fresh reads: every index run that changes the store writes a new generation file; readers check it
before each operation and reopen their client when it changed (`store.freshness`), so a long-lived
reader (the app) never serves a stale HNSW cache. `store.last_changed()` says when.

Complete or flagged: a collection is marked incomplete (collection metadata, so it travels with a
Chroma server too) from before an index run's first write until that run completes;
`collection.is_complete` / `incomplete_reason` and `store.incomplete()` tell readers.
"""

from coverlens.locks import WriterLock
from coverlens.store.collection import CoverCollection, StoredVectors
from coverlens.store.freshness import Generation
from coverlens.store.store import COLLECTION_PREFIX, CollectionInfo, CoverStore, collection_name

__all__ = [
    "COLLECTION_PREFIX", "CollectionInfo", "CoverCollection", "CoverStore", "Generation", "StoredVectors",
    "WriterLock", "collection_name",
]
