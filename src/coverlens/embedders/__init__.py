"""Embedders: turn cover images into float32, L2-normalised vectors.

Every embedder has a `name` (used in collection names and reports), an `identity` (a JSON-able
dict that says exactly which model and preprocessing made the vectors: stored with the
collection, compared on reuse), a `dimension`, and `embed(images) -> (n, dimension) float32`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from coverlens.preprocess import torch_threads

__all__ = ["Embedder", "identity_key", "l2_normalise", "torch_threads"]

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimension: int

    @property
    def identity(self) -> dict[str, Any]: ...

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


def identity_key(identity: dict[str, Any]) -> str:
    """A short stable fingerprint of an identity (for collection names)."""
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
