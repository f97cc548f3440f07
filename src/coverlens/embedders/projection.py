"""Compact vectors: a linear projection (PCA or PCA-whitening) fitted once on the train split.

The fine-tuned backbone gives 2,560-d vectors (about 19 KB a cover in Chroma). A projection to at
most `MAX_DIMENSION` dimensions, fitted on the train split's vectors, keeps what varies between
covers and stores a fraction of the bytes (see benchmarks/bench_compact.py for the measured
trade-off). The fitted projection is saved beside the model and its sha256 becomes part of the
embedder's identity, so vectors made with another projection are refused like vectors of another
model.

`ProjectedEmbedder(inner, projection)` is an `Embedder` like any other: same name, the projection's
dimension, `embed = l2(project(inner.embed))`; it keeps the inner embedder's split into `prepare`
and `embed_prepared` when it has one, so the indexer still preprocesses ahead of the network.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coverlens.embedders import l2_normalise

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from coverlens.embedders import Embedder

MAX_DIMENSION = 512  # the most dimensions stored per embedder
KINDS = ("pca", "whiten")
# Whitening divides each component by its standard deviation; the tail of a spectrum fitted on a
# few thousand covers is noise, so a floor relative to the largest variance keeps it from blowing up.
WHITEN_FLOOR = 1e-3


@dataclass(frozen=True)
class Projection:
    """x -> (x - mean) @ components.T * scale, then L2-normalised (scale 1 for plain PCA)."""

    kind: str
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (k, d), rows orthonormal
    scale: np.ndarray  # (k,)
    fitted_on: int  # vectors it was fitted on

    @property
    def dimension(self) -> int:
        return int(self.components.shape[0])

    @property
    def input_dimension(self) -> int:
        return int(self.components.shape[1])

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256(self.kind.encode())
        for array in (self.mean, self.components, self.scale):
            digest.update(array.astype("<f4").tobytes())
        return digest.hexdigest()

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "dimension": self.dimension, "fitted_on": self.fitted_on,
                "sha256": self.sha256}

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float32)
        return l2_normalise(((vectors - self.mean) @ self.components.T) * self.scale)

    def to_bytes(self) -> bytes:
        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, kind=np.array(self.kind), mean=self.mean, components=self.components, scale=self.scale,
                 fitted_on=np.array(self.fitted_on))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Projection:
        import numpy as np

        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(kind=str(arrays["kind"]), mean=arrays["mean"].astype(np.float32),
                       components=arrays["components"].astype(np.float32), scale=arrays["scale"].astype(np.float32),
                       fitted_on=int(arrays["fitted_on"]))


def fit_projection(vectors: np.ndarray, dimension: int = MAX_DIMENSION, kind: str = "pca") -> Projection:
    """PCA (or PCA-whitening) of `vectors` to `dimension` components (at most one per vector).

    Deterministic: an exact SVD, each component's sign fixed so its largest loading is positive.
    """
    import numpy as np

    if kind not in KINDS:
        raise ValueError(f"projection kind must be one of {', '.join(KINDS)}, not {kind!r}")
    data = np.asarray(vectors, dtype=np.float64)
    if data.ndim != 2 or len(data) < 2:
        raise ValueError(f"need at least 2 vectors to fit a projection, got shape {data.shape}")
    k = min(dimension, data.shape[1], len(data) - 1)
    mean = data.mean(axis=0)
    _, singular, vt = np.linalg.svd(data - mean, full_matrices=False)
    components = vt[:k]
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    if kind == "whiten":
        variance = singular[:k] ** 2 / (len(data) - 1)
        scale = 1.0 / np.sqrt(np.maximum(variance, variance[0] * WHITEN_FLOOR))
    else:
        scale = np.ones(k)
    return Projection(kind, mean.astype(np.float32), components.astype(np.float32), scale.astype(np.float32),
                      fitted_on=len(data))


class ProjectedEmbedder:
    """An embedder followed by a projection; its identity is the inner one's plus the projection's."""

    def __init__(self, inner: Embedder, projection: Projection) -> None:
        if projection.input_dimension != inner.dimension:
            raise ValueError(f"a projection of {projection.input_dimension}-d vectors cannot follow "
                             f"the {inner.dimension}-d {inner.name} embedder")
        self.inner, self.projection = inner, projection
        self.name = inner.name
        self.dimension = projection.dimension

    @property
    def identity(self) -> dict[str, Any]:
        return {**self.inner.identity, "dimension": self.dimension, "input_dimension": self.inner.dimension,
                "projection": self.projection.identity}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.projection.apply(self.inner.embed(images))


class PreparingProjectedEmbedder(ProjectedEmbedder):
    """The same, for an inner embedder whose preprocessing runs apart from its network."""

    def prepare(self, images: Sequence[Image.Image]) -> Any:
        return self.inner.prepare(images)  # type: ignore[attr-defined]

    def embed_prepared(self, prepared: Any) -> np.ndarray:
        return self.projection.apply(self.inner.embed_prepared(prepared))  # type: ignore[attr-defined]


def project(inner: Embedder, projection: Projection | None) -> Embedder:
    """`inner` followed by `projection` (itself when there is none)."""
    if projection is None:
        return inner
    if hasattr(inner, "prepare") and hasattr(inner, "embed_prepared"):
        return PreparingProjectedEmbedder(inner, projection)
    return ProjectedEmbedder(inner, projection)
