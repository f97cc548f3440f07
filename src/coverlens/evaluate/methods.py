"""The evaluated methods: each turns covers into a probability matrix over the evaluation classes.

Pure functions over arrays; the image pass that feeds them (decode once, embed in batches, time
each model) lives in `passes.py`, the wiring in `runner.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Method:
    """One row of the comparison: a stable slug (file names, JSON keys) and its display name."""

    slug: str
    name: str


# The other rows (genre signals, one KNN vote per embedder) are declared in `coverlens.registry`.
MAJORITY = Method("majority", "majority class (chance)")


def align_columns(proba: np.ndarray, source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Reorder a model's probability columns (its `source` classes) to the evaluation `target` classes.

    A target genre the model does not know gets 0; a model genre absent from the catalog is dropped
    (it can never be right, and keeping it would not change any arg-max among the others).
    """
    import numpy as np

    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(source):
        raise ValueError(f"model gave {proba.shape} probabilities for {len(source)} classes")
    where = {genre: i for i, genre in enumerate(source)}
    out = np.zeros((proba.shape[0], len(target)), dtype=np.float64)
    for j, genre in enumerate(target):
        if genre in where:
            out[:, j] = proba[:, where[genre]]
    return out


def knn_proba(
    test_vectors: np.ndarray,
    train_vectors: np.ndarray,
    train_labels: np.ndarray,
    n_classes: int,
    *,
    k: int,
    weighted: bool,
) -> np.ndarray:
    """KNN class shares from L2-normalised vectors (cosine similarity = dot product)."""
    import numpy as np

    from coverlens.search.vote import knn_scores

    if len(train_vectors) == 0:
        raise ValueError("no reference vectors to vote with")
    if test_vectors.shape[1] != train_vectors.shape[1]:
        raise ValueError(f"test vectors have dimension {test_vectors.shape[1]}, "
                         f"references {train_vectors.shape[1]}")
    similarities = np.asarray(test_vectors, np.float32) @ np.asarray(train_vectors, np.float32).T
    return knn_scores(similarities, np.asarray(train_labels), n_classes, k=k, weighted=weighted)


def majority_proba(train_labels: np.ndarray, n_test: int, n_classes: int) -> np.ndarray:
    """Every cover gets the train genre frequencies: arg-max is the most frequent train genre, and
    top-3 is the three most frequent ones (a fair chance level for top-3 too)."""
    import numpy as np

    counts = np.bincount(np.asarray(train_labels), minlength=n_classes).astype(np.float64)
    if counts.sum() == 0:
        raise ValueError("no train labels")
    return np.tile(counts / counts.sum(), (n_test, 1))
