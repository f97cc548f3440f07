"""HDBSCAN clusters of stored cover vectors, with each cluster's genre mix (pure: arrays in, records out).

Vectors are L2-normalised, reduced with PCA, then clustered with euclidean HDBSCAN: on unit
vectors euclidean distance is a monotone function of cosine distance, and hdbscan's
`metric='cosine'` is unsupported and breaks `prediction_data` (see DESIGN.md). PCA first because
HDBSCAN's cost grows fast with dimension.

Agreement with the genres is measured with ARI and NMI (scikit-learn) of the cluster labels
against the primary genres, over ALL covers: noise points keep the label -1 and count as one more
"cluster", so a clustering that leaves most covers as noise scores low.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from coverlens.embedders import l2_normalise
from coverlens.errors import ArgumentError, StoreError

if TYPE_CHECKING:
    import numpy as np

MAX_EXEMPLARS = 8
NOISE = -1
# HDBSCAN's cost grows fast with dimension. Measured on 2 busy cores, 23.5k real 1280-d cover
# features: PCA 16 took 14 s of CPU, PCA 32 took 55 s (about 100 s extrapolated to 32k covers).
DEFAULT_PCA_DIM = 16


@dataclass
class ClusterSummary:
    cluster_id: int
    size: int
    dominant_genre: str
    purity: float  # share of the cluster's covers filed under its dominant genre
    genre_mix: dict[str, int]  # genre -> covers, most first
    exemplar_ids: list[str]
    exemplar_paths: list[str]

    def top_genres(self, n: int = 3) -> str:
        return ", ".join(f"{g} {c}" for g, c in list(self.genre_mix.items())[:n])


@dataclass
class ClusterReport:
    embedder: str
    n_covers: int
    clusters: list[ClusterSummary]  # largest first
    noise_share: float  # share of covers HDBSCAN left unclustered
    ari: float  # adjusted Rand index, clusters (noise = one label) vs primary genre
    nmi: float  # normalised mutual information, same convention
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # PCA + HDBSCAN wall time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterReport:
        clusters = [ClusterSummary(**c) for c in data["clusters"]]
        return cls(**{**data, "clusters": clusters})


@dataclass
class ClusterModel:
    """What it takes to place a new cover: the fitted PCA (or None) and the HDBSCAN clusterer."""

    embedder: str
    pca: Any  # sklearn.decomposition.PCA | None
    clusterer: Any  # hdbscan.HDBSCAN fitted with prediction_data=True
    ids: list[str]

    @property
    def labels(self) -> np.ndarray:
        return self.clusterer.labels_

    @property
    def probabilities(self) -> np.ndarray:
        return self.clusterer.probabilities_

    def reduce(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors -> the space the clusterer works in (L2-normalised, then PCA)."""
        unit = l2_normalise(vectors)
        return unit if self.pca is None else self.pca.transform(unit).astype("float32")


def default_min_cluster_size(n: int) -> int:
    """About 1% of the library, at least 5: small enough for sub-genres, big enough to mean something."""
    return max(5, n // 100)


def default_min_samples(min_cluster_size: int) -> int:
    """Neighbours that define density. hdbscan's default (= min_cluster_size) took twice as long on
    32k synthetic vectors (53 s vs 26 s) and found the same clusters (benchmarks/bench_clusters.py)."""
    return min(min_cluster_size, 10)


def cluster_vectors(
    vectors: np.ndarray,
    genres: Sequence[str],
    ids: Sequence[str],
    paths: Sequence[str],
    *,
    embedder: str = "",
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    pca_dim: int = DEFAULT_PCA_DIM,
    seed: int = 0,
) -> tuple[ClusterReport, ClusterModel]:
    """Cluster covers; summarise each cluster's genre mix and score clusters against genres."""
    import hdbscan
    import numpy as np
    from sklearn.decomposition import PCA

    n = len(vectors)
    if not (len(genres) == len(ids) == len(paths) == n):
        raise ValueError(f"{n} vectors but {len(genres)} genres, {len(ids)} ids, {len(paths)} paths")
    if n < 3:
        raise StoreError(f"need at least 3 stored covers to cluster, got {n}; index more covers first")
    if min_cluster_size is not None and not 2 <= min_cluster_size <= n:
        raise ArgumentError(f"min_cluster_size must be between 2 and the {n:,} stored covers, got {min_cluster_size}")
    if min_samples is not None and min_samples < 1:
        raise ArgumentError(f"min_samples must be at least 1, got {min_samples}")
    if pca_dim < 1:
        raise ArgumentError(f"pca_dim must be at least 1, got {pca_dim}")
    # only the default adapts to a small library; a value given is used as given
    mcs = min_cluster_size if min_cluster_size is not None else max(2, min(default_min_cluster_size(n), n))
    samples = min_samples if min_samples is not None else default_min_samples(mcs)
    started = time.perf_counter()
    unit = l2_normalise(vectors)
    pca = None
    if unit.shape[1] > pca_dim and n > pca_dim:
        pca = PCA(n_components=pca_dim, random_state=seed).fit(unit)
        reduced = pca.transform(unit).astype(np.float32)
    else:
        reduced = unit
    clusterer = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=samples, metric="euclidean",
                                prediction_data=True)
    clusterer.fit(reduced)
    seconds = time.perf_counter() - started

    labels = clusterer.labels_
    model = ClusterModel(embedder=embedder, pca=pca, clusterer=clusterer, ids=list(ids))
    params = {"min_cluster_size": mcs, "min_samples": samples,
              "pca_dim": reduced.shape[1] if pca is not None else None, "input_dim": int(unit.shape[1]),
              "metric": "euclidean on L2-normalised vectors", "seed": seed}
    report = ClusterReport(
        embedder=embedder, n_covers=n,
        clusters=summarise(reduced, labels, clusterer.probabilities_, genres, ids, paths),
        noise_share=float(np.mean(labels == NOISE)), params=params, seconds=round(seconds, 3),
        **agreement(labels, genres),
    )
    return report, model


def agreement(labels: np.ndarray, genres: Sequence[str]) -> dict[str, float]:
    """ARI and NMI of cluster labels vs genres; noise (-1) is kept as one label."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    truth = list(genres)
    return {"ari": round(float(adjusted_rand_score(truth, labels)), 4),
            "nmi": round(float(normalized_mutual_info_score(truth, labels)), 4)}


def summarise(
    reduced: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    genres: Sequence[str],
    ids: Sequence[str],
    paths: Sequence[str],
) -> list[ClusterSummary]:
    """One summary per cluster, largest first; exemplars are its strongest, most central members."""
    import numpy as np

    summaries = []
    for cid in sorted(set(labels.tolist()) - {NOISE}):
        members = np.flatnonzero(labels == cid)
        mix = Counter(genres[i] for i in members)
        ranked = sorted(mix.items(), key=lambda item: (-item[1], item[0]))
        centre = reduced[members].mean(axis=0)
        spread = np.linalg.norm(reduced[members] - centre, axis=1)
        order = members[np.lexsort((spread, -probabilities[members]))][:MAX_EXEMPLARS]
        summaries.append(ClusterSummary(
            cluster_id=int(cid), size=len(members), dominant_genre=ranked[0][0],
            purity=round(ranked[0][1] / len(members), 4), genre_mix=dict(ranked),
            exemplar_ids=[ids[i] for i in order], exemplar_paths=[paths[i] for i in order],
        ))
    summaries.sort(key=lambda s: (-s.size, s.cluster_id))
    return summaries


def place_covers(model: ClusterModel, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (-1 = none) and membership strengths in [0, 1] for new covers."""
    import hdbscan
    import numpy as np

    reduced = model.reduce(vectors)
    if not (model.labels >= 0).any():  # everything was noise: nothing to join (hdbscan would warn)
        return np.full(len(reduced), NOISE), np.zeros(len(reduced))
    labels, strengths = hdbscan.approximate_predict(model.clusterer, reduced)
    return labels, strengths


def place_cover(model: ClusterModel, vector: np.ndarray) -> tuple[int, float]:
    """The cluster of one new cover (-1 when it fits none) and how strongly it belongs."""
    labels, strengths = place_covers(model, vector.reshape(1, -1))
    return int(labels[0]), float(strengths[0])
