"""Which cluster a new cover falls in, with no slow path at query time.

The default is a vote of its nearest stored covers: each neighbour votes for its own cluster
(noise votes for "none"), weighted by similarity. It costs one unfiltered store query (the search
runs one anyway) and a dictionary lookup, and imports nothing heavy. Measured against
`place_by_transform` (UMAP.transform + HDBSCAN approximate_predict) in benchmarks/bench_clusters.py:
see README "Clusters".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from coverlens.clustering.refine import NOISE

if TYPE_CHECKING:
    import numpy as np

    from coverlens.clustering.fit import Clustering, ClusterModel
    from coverlens.records import Hit

PLACE_K = 10


class Neighbours(Protocol):
    def query(self, vectors: np.ndarray, k: int, *, where: dict[str, Any] | None = None) -> list[list[Hit]]: ...


def knn_vote(model: ClusterModel, hits: Sequence[Hit]) -> tuple[int, float]:
    """(cluster, share of the similarity that voted for it); (-1, 0.0) when no neighbour is clustered."""
    weight: dict[int, float] = defaultdict(float)
    for hit in hits:
        label = model.label_of(hit.id)
        if label is not None:
            weight[label] += max(float(hit.similarity), 1e-6)
    if not weight:
        return NOISE, 0.0
    winner = max(weight, key=lambda c: (weight[c], -c))
    return winner, weight[winner] / sum(weight.values())


def place_cover(model: ClusterModel, vector: np.ndarray, neighbours: Neighbours, *,
                k: int = PLACE_K) -> tuple[int, float]:
    """The cluster of one new cover (-1 when its neighbours are mostly noise) and the vote's share."""
    [hits] = neighbours.query(vector.reshape(1, -1), k)
    return knn_vote(model, hits)


def place_by_transform(clustering: Clustering, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slow alternative, image space only: features -> reducer.transform -> approximate_predict."""
    import hdbscan
    import numpy as np

    fitted = clustering.fitted
    if fitted.features.transform is None:
        raise ValueError(f"covers cannot be placed by transform in the {clustering.report.space} space")
    points = fitted.reducer.transform(fitted.features.transform(vectors))
    raw, strengths = hdbscan.approximate_predict(fitted.clusterer, points)
    return np.array([fitted.to_final.get(int(c), NOISE) for c in raw]), strengths
