"""After HDBSCAN: merge similar small clusters down to a readable count, and (optionally) assign
noise covers that lie close to a cluster. Pure functions over the reduced points and the labels.

Merging follows BERTopic's topic reduction: the smallest cluster joins the cluster whose centre is
nearest, one at a time, until at most `max_clusters` remain. Outlier reduction follows its
`reduce_outliers` by embeddings: a noise cover joins the nearest cluster centre when it lies
within `reach` times that cluster's radius (the 90th percentile of its members' distances).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

NOISE = -1
RADIUS_PERCENTILE = 90


def centres(reduced: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray]:
    import numpy as np

    ids = sorted(set(labels.tolist()) - {NOISE})
    return ids, np.array([reduced[labels == c].mean(axis=0) for c in ids]).reshape(len(ids), reduced.shape[1])


def merge_small(reduced: np.ndarray, labels: np.ndarray, max_clusters: int | None) -> tuple[np.ndarray, dict[int, int]]:
    """Labels with at most `max_clusters` clusters; and old cluster id -> the id it was merged into."""
    import numpy as np

    labels = labels.copy()
    ids, points = centres(reduced, labels)
    sizes = {c: int((labels == c).sum()) for c in ids}
    centre = dict(zip(ids, points, strict=True))
    merged: dict[int, int] = {}
    while max_clusters is not None and len(centre) > max(1, max_clusters):
        small = min(centre, key=lambda c: (sizes[c], c))
        others = [c for c in centre if c != small]
        gaps = np.linalg.norm(np.array([centre[c] for c in others]) - centre[small], axis=1)
        into = others[int(np.argmin(gaps))]
        total = sizes[small] + sizes[into]
        centre[into] = (centre[into] * sizes[into] + centre[small] * sizes[small]) / total
        sizes[into] = total
        del centre[small], sizes[small]
        labels[labels == small] = into
        merged[small] = into
        for old, new in merged.items():  # keep the map pointing at survivors
            if new == small:
                merged[old] = into
    return labels, merged


def renumber_by_size(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Cluster 0 is the largest; noise stays -1. Returns the labels and old id -> new id."""
    import numpy as np

    ids = sorted(set(labels.tolist()) - {NOISE}, key=lambda c: (-int((labels == c).sum()), c))
    mapping = {old: new for new, old in enumerate(ids)}
    out = np.array([mapping.get(int(v), NOISE) for v in labels], dtype=int)
    return out, mapping


def reduce_outliers(reduced: np.ndarray, labels: np.ndarray, reach: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with close noise covers assigned, and a mask of the covers that were reassigned."""
    import numpy as np

    labels = labels.copy()
    noise = np.flatnonzero(labels == NOISE)
    ids, points = centres(reduced, labels)
    if not ids or not len(noise):
        return labels, np.zeros(len(labels), dtype=bool)
    radius = np.array([np.percentile(np.linalg.norm(reduced[labels == c] - points[k], axis=1), RADIUS_PERCENTILE)
                       for k, c in enumerate(ids)])
    gaps = np.linalg.norm(reduced[noise, None, :] - points[None, :, :], axis=2)
    nearest = gaps.argmin(axis=1)
    close = gaps[np.arange(len(noise)), nearest] <= reach * radius[nearest]
    labels[noise[close]] = np.array(ids)[nearest[close]]
    reassigned = np.zeros(len(labels), dtype=bool)
    reassigned[noise[close]] = True
    return labels, reassigned
