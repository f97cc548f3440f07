"""The workspace's projection of an embedder: fitted once on the train split, saved, reloaded.

When: at the first build of the embedder after a model is trained (the first `coverlens index`,
usually), so a model trained before projections existed gets one too, and `train` stays as it
was. It is fitted on up to `FIT_SAMPLE` train-split covers (seeded sample), saved atomically as
`model/projection-<embedder>-<inner identity key>.npz`: a retrained model has another identity key
and gets its own projection; the file of the model in use is never refitted, so every process (and
every Ray worker, which is handed the fitted embedder) projects the same way.

A train split smaller than the target dimension gets no projection (the full vectors are stored):
a PCA fitted on fewer covers than dimensions would throw away what the other covers hold. That
decision is saved too (`.none` beside where the projection would be), so the vectors' identity
does not change under a collection when the library grows later; delete the file and run
`coverlens index --rebuild` to fit a projection then.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from coverlens.embedders import identity_key
from coverlens.embedders.projection import MAX_DIMENSION, Projection, fit_projection, project

if TYPE_CHECKING:
    import numpy as np

    from coverlens.embedders import Embedder
    from coverlens.indexer.plan import Cover
    from coverlens.workspace import Workspace

log = logging.getLogger(__name__)

# Measured (benchmarks/bench_compact.py, README "Compact vectors"): plain PCA beat whitening on the
# KNN vote and on Chroma's recall@10 (whitened spaces are harder for HNSW); 256 dimensions store a
# cover in about 1/7 of the bytes of the full 2,560 with a KNN vote as good or better.
DEFAULT_KIND = "pca"
DEFAULT_DIMENSION = 256  # at most MAX_DIMENSION
FIT_SAMPLE = 4000  # train covers a projection is fitted on (enough for 512 components; bounded cost)
FIT_BATCH = 64


def projection_file(workspace: Workspace, inner: Embedder) -> Path:
    return workspace.model_dir / f"projection-{inner.name}-{identity_key(inner.identity)}.npz"


def train_sample(workspace: Workspace, limit: int = FIT_SAMPLE, seed: int = 0) -> list[Cover]:
    """Up to `limit` distinct train-split covers (a seeded sample, in id order)."""
    from coverlens.catalog import distinct_covers, load_catalog
    from coverlens.indexer.plan import covers_from_catalog

    covers = distinct_covers(load_catalog(workspace))
    train = covers[covers["split"] == "train"].sort_values("id")
    if len(train) > limit:
        train = train.sample(n=limit, random_state=seed).sort_values("id")
    return list(covers_from_catalog(train).values())


def train_vectors(workspace: Workspace, inner: Embedder, chosen: list[Cover]) -> np.ndarray:
    """`inner`'s vectors of the readable covers among `chosen` (unreadable ones are left out)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from coverlens.catalog import library_root
    from coverlens.indexer.pipeline import default_readers, read_batch

    root = library_root(workspace)
    blocks = []
    with ThreadPoolExecutor(max_workers=default_readers()) as pool:
        for start in range(0, len(chosen), FIT_BATCH):
            batch = read_batch(root, chosen[start:start + FIT_BATCH], pool)
            if batch.images:
                blocks.append(inner.embed(batch.images))
    return np.concatenate(blocks) if blocks else np.zeros((0, inner.dimension), np.float32)


def workspace_projection(workspace: Workspace, inner: Embedder, *, dimension: int = DEFAULT_DIMENSION,
                         kind: str = DEFAULT_KIND) -> Projection | None:
    """The saved projection for `inner`, fitted now if there is none; None when `inner` is already
    small enough or the train split is too small to fit one."""
    from coverlens.workspace import atomic_path

    if dimension > MAX_DIMENSION:
        raise ValueError(f"a projection keeps at most {MAX_DIMENSION} dimensions, not {dimension}")
    if inner.dimension <= dimension:
        return None
    path = projection_file(workspace, inner)
    if path.exists():
        return Projection.from_bytes(path.read_bytes())
    if path.with_suffix(".none").exists():
        return None
    chosen = train_sample(workspace)
    vectors = train_vectors(workspace, inner, chosen) if len(chosen) >= dimension else chosen
    if len(vectors) < dimension:
        reason = f"{len(vectors)} train covers, fewer than {dimension} dimensions: full vectors are stored"
        log.info("%s: %s", inner.name, reason)
        with atomic_path(path.with_suffix(".none")) as tmp:
            tmp.write_text(reason + "\n")
        _remove_stale(path, inner.name)
        return None
    log.info("%s: fitting a %s projection to %d dimensions on %d train covers", inner.name, kind, dimension,
             len(vectors))
    projection = fit_projection(vectors, dimension, kind)
    with atomic_path(path) as tmp:
        tmp.write_bytes(projection.to_bytes())
    _remove_stale(path, inner.name)
    return projection


def _remove_stale(path: Path, name: str) -> None:
    """Projections (and decisions) of models replaced since."""
    own = re.compile(rf"projection-{re.escape(name)}-[0-9a-f]{{12}}")  # not another embedder's ("name-x")
    for stale in path.parent.glob(f"projection-{name}-*"):
        if stale.stem != path.stem and own.fullmatch(stale.stem):
            stale.unlink(missing_ok=True)


def projected(workspace: Workspace, inner: Embedder, **kwargs: object) -> Embedder:
    """`inner` with the workspace's projection (see `workspace_projection`)."""
    return project(inner, workspace_projection(workspace, inner, **kwargs))  # type: ignore[arg-type]
