"""The stages of an index run on Ray, as Ray Data `map_batches` callables over dict-of-array batches.

Rows are covers: `id`, `path`, `metadata` (JSON, what is stored with the vector) and `wants` (bit n
set: collection n lacks the cover). Each stage adds columns and passes the rest on:

- `read_covers` (tasks): decodes the files with the single-process indexer's own `read_batch`
  (same decoder, same limits, unreadable files recorded) -> `pixels` (RGB uint8), `error`;
- `EmbedCovers` (actors: each holds the embedders, on a GPU when it was given one) ->
  `vector_<n>` for embedder n (zeros where the collection has the cover already);
- further model stages plug in the same way; the OCR is its own pass (`coverlens.text.ray_reads`):
  its plan (covers not yet read) and its store (the workspace's SQLite, written by the driver) differ;
- `WriteCovers` (one actor holding a client of the Chroma server) upserts each batch as soon as it
  is made, so a run stopped at any point resumes with the covers still missing -> `id`, `error`, `wrote`.

Nothing here imports Ray: these are plain callables, tested as such and shipped by `ray_runner`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.indexer.pipeline import read_batch
from coverlens.indexer.plan import Cover

if TYPE_CHECKING:
    from coverlens.embedders import Embedder

Batch = dict[str, Any]  # column -> numpy array (Ray Data's "numpy" batch format)
PLACEHOLDER_SHAPE = (1, 1, 3)  # the pixels of an unreadable cover (never embedded)


def read_covers(batch: Batch, root: str, readers: int = 4) -> Batch:
    """Decode a batch of covers into RGB arrays; an unreadable one gets an `error` and no pixels."""
    import numpy as np

    ids, paths = [str(i) for i in batch["id"]], [str(p) for p in batch["path"]]
    with ThreadPoolExecutor(max_workers=readers) as pool:
        read = read_batch(Path(root), [Cover(i, p, {}) for i, p in zip(ids, paths, strict=True)], pool)
    images = {cover.id: image for cover, image in zip(read.covers, read.images, strict=True)}
    errors = dict(read.failures)
    pixels = np.empty(len(ids), dtype=object)
    for n, i in enumerate(ids):
        pixels[n] = np.asarray(images[i]) if i in images else np.zeros(PLACEHOLDER_SHAPE, np.uint8)
    return {**batch, "pixels": pixels, "error": np.array([errors.get(p, "") for p in paths], dtype=object)}


def to_device(embedder: Any, device: str) -> None:
    """Move a torch embedder (or the one a projection wraps) to `device`: the backbone embedders keep
    their network in `net` and a torch.device, the CLIP one its model in `model` and a device name;
    others (fakes) are left alone."""
    target = getattr(embedder, "inner", embedder)
    if not hasattr(target, "device"):
        return
    import torch

    if hasattr(target, "net"):
        target.device = torch.device(device)
        target.net.to(target.device)
    elif isinstance(getattr(target, "model", None), torch.nn.Module):
        target.device = device
        target.model.to(device)


class EmbedCovers:
    """An actor holding the run's embedders: embeds each readable cover for each collection lacking it."""

    def __init__(self, embedders: Sequence[Embedder], device: str | None = None) -> None:
        self.embedders = list(embedders)
        if device:
            for embedder in self.embedders:
                to_device(embedder, device)

    def __call__(self, batch: Batch) -> Batch:
        import numpy as np
        from PIL import Image

        wants = np.asarray(batch["wants"], dtype=np.int64)
        readable = np.array([not e for e in batch["error"]], dtype=bool)
        out = {k: v for k, v in batch.items() if k != "pixels"}
        for n, embedder in enumerate(self.embedders):
            rows = np.flatnonzero(readable & ((wants >> n) & 1).astype(bool))
            vectors = np.zeros((len(wants), embedder.dimension), np.float32)
            if len(rows):
                vectors[rows] = embedder.embed([Image.fromarray(batch["pixels"][r]) for r in rows])
            out[f"vector_{n}"] = vectors
        return out


class WriteCovers:
    """An actor holding a client of the Chroma server and the run's collections (checked identities)."""

    def __init__(self, url: str, collections: Sequence[tuple[str, dict[str, Any]]]) -> None:
        from coverlens.store.store import CoverStore, _http_client

        self.store = CoverStore(_http_client(url), url)
        self.collections = [self.store.collection_for(name, identity) for name, identity in collections]

    def __call__(self, batch: Batch) -> Batch:
        import numpy as np

        wants = np.asarray(batch["wants"], dtype=np.int64)
        readable = np.array([not e for e in batch["error"]], dtype=bool)
        ids = [str(i) for i in batch["id"]]
        metadatas = [json.loads(m) for m in batch["metadata"]]
        wrote = np.zeros(len(ids), dtype=np.int64)
        for n, collection in enumerate(self.collections):
            rows = np.flatnonzero(readable & ((wants >> n) & 1).astype(bool))
            if len(rows):
                collection.upsert([ids[r] for r in rows], np.asarray(batch[f"vector_{n}"])[rows],
                                  [metadatas[r] for r in rows])
                wrote[rows] |= 1 << n
        return {"id": np.array(ids, dtype=object), "path": batch["path"], "error": batch["error"], "wrote": wrote}


def cover_rows(covers: Sequence[Cover], wants: dict[str, int]) -> list[dict[str, Any]]:
    """The dataset's rows: each cover some collection lacks, with the bits of the collections lacking it."""
    return [{"id": c.id, "path": c.path, "metadata": json.dumps(c.metadata, sort_keys=True), "wants": wants[c.id]}
            for c in covers]
