"""The KNN genre vote: pure functions over neighbour lists or similarity matrices."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from coverlens.records import GenreScore, Hit, Vote

if TYPE_CHECKING:
    import numpy as np


def vote(neighbours: Sequence[Hit], *, weighted: bool = True) -> Vote:
    """Vote over neighbours; each counts its similarity (or 1 when `weighted` is False).

    Negative similarities count zero: a cover pointing away from the query is no evidence. An
    unlabelled neighbour (genre "") has no genre to give: it does not vote and is not evidence.
    Ties go to the genre with the single closest neighbour, then alphabetically, so the result is stable.
    """
    totals: dict[str, float] = defaultdict(float)
    best: dict[str, float] = defaultdict(lambda: -2.0)
    neighbours = [hit for hit in neighbours if hit.genre]
    for hit in neighbours:
        totals[hit.genre] += max(hit.similarity, 0.0) if weighted else 1.0
        best[hit.genre] = max(best[hit.genre], hit.similarity)
    if not totals:
        return Vote(genre=None, scores=[], evidence=list(neighbours))
    mass = sum(totals.values())
    ranked = sorted(totals, key=lambda g: (-totals[g], -best[g], g))
    scores = [GenreScore(g, totals[g] / mass if mass > 0 else 1.0 / len(totals)) for g in ranked]
    return Vote(genre=ranked[0], scores=scores, evidence=list(neighbours))


def knn_scores(
    similarities: np.ndarray,
    train_labels: np.ndarray,
    n_classes: int,
    *,
    k: int = 5,
    weighted: bool = True,
) -> np.ndarray:
    """Class scores (n_queries, n_classes) from a query x train similarity matrix, rows summing to 1.

    The batch twin of `vote`, for evaluation: same weighting and the same tie rule.
    """
    import numpy as np

    k = min(k, similarities.shape[1])
    top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(similarities, top, axis=1)
    weights = np.clip(top_sims, 0.0, None) if weighted else np.ones_like(top_sims)
    scores = np.zeros((similarities.shape[0], n_classes), dtype=np.float64)
    np.add.at(scores, (np.arange(len(top))[:, None], train_labels[top]), weights)
    # tie-break as `vote` does: a tiny bonus for the class of the single closest neighbour
    closest = train_labels[top[np.arange(len(top)), np.argmax(top_sims, axis=1)]]
    scores[np.arange(len(top)), closest] += 1e-9
    mass = scores.sum(axis=1, keepdims=True)
    return np.where(mass > 0, scores / np.maximum(mass, 1e-12), 1.0 / n_classes)
