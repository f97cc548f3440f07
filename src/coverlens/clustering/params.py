"""Clustering settings in one place: which values are refused, and how the defaults (their values in
coverlens.defaults) adapt to the library's size.

The recipe is BERTopic's: UMAP to 5 dimensions (15 neighbours, min_dist 0, cosine), then HDBSCAN
(euclidean, with prediction data) on the result. `resolve(n)` turns "adapt" (None) into numbers:
a minimum cluster size that grows with the library, so that 1k covers and 50k covers both give
clusters a person can read, with similar small clusters merged down to `max_clusters`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from coverlens.defaults import (
    CLUSTER_CLUSTERER,
    CLUSTER_MIN_SAMPLES,
    CLUSTER_PRE_PCA,
    CLUSTER_REDUCER,
    CLUSTER_SEED,
    CLUSTER_SPACE,
    EPSILON_PER_CORE,
    GENRE_WEIGHT,
    MAX_CLUSTER_SHARE,
    MAX_CLUSTERS,
    OUTLIER_REACH,
    PCA_COMPONENTS,
    TEXT_WEIGHT,
    UMAP_COMPONENTS,
    UMAP_NEIGHBORS,
)
from coverlens.errors import ArgumentError

SPACES = ("auto", "image", "text", "image+text", "image+genre", "image+text+genre", "genre")
# auto: image+text+genre when at least half the covers have OCR text, else image+genre; either
# without its genre part where too few covers have a genre (genre_part.py). Measured side by side
# (benchmarks/bench_cluster_spaces.py, README "Clusters"): image+text+genre NMI 0.140 on
# album-covers-5 and 0.291 on book-covers-color5 (image+text 0.086 / 0.137); image+genre beat image
# on album, color5 and gray33 (0.065 / 0.236 / 0.097 vs 0.041 / 0.133 / 0.053).
DEFAULT_SPACE = CLUSTER_SPACE
AUTO_TEXT_SHARE = 0.5
DEFAULT_REDUCER = CLUSTER_REDUCER
DEFAULT_CLUSTERER = CLUSTER_CLUSTERER
# MIN_SAMPLES 2, with the size cap: 44% noise on album-covers-5's image vectors, 63% with 10.
MIN_SAMPLES = CLUSTER_MIN_SAMPLES
# Where the vectors hold one big blob (album-covers-5's image vectors), HDBSCAN's best answer is
# 2 clusters, one of them 90% of the covers. When one cluster holds over GIANT_SHARE of the covers,
# HDBSCAN runs again with clusters capped at MAX_CLUSTER_SHARE: it then splits the blob into the
# styles inside it (40 clusters there with min_samples 2; README "Clusters").
GIANT_SHARE = 0.5
# HDBSCAN's cluster_selection_epsilon in UMAP's output space: clusters closer than this are kept
# whole instead of split into fragments and noise. Measured at 4k covers with a fixed 0.2:
# book-covers-color5's image vectors 45 clusters / 49% noise / NMI 0.122 without it, 23 / 34% /
# 0.137 with it; sensitive: 0.3-0.4 collapsed both sets to 2 clusters. A fixed value does not scale:
# UMAP's layout keeps its size while the points grow denser with n, so at 23.5k covers
# (book-covers-gray33) 0.2 merged everything into 3 clusters. The default is therefore relative to
# the density: EPSILON_PER_CORE times the median core distance (distance to the min_samples-th
# neighbour) of the reduced points: 0.143 at 4.4k covers (x 1.4 = 0.2, the value measured above),
# 0.110 at 23.5k (x 1.4 = 0.153: 15 clusters, noise 41%, instead of 3). See `adaptive_epsilon`.


def default_min_cluster_size(n: int) -> int:
    """At least 10 (BERTopic's), about 0.5% of the library above 2,000 covers."""
    return max(10, n // 200)


def adaptive_epsilon(points: Any, min_samples: int) -> float:
    """EPSILON_PER_CORE times the median distance of a point to its min_samples-th neighbour."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    k = min(min_samples + 1, len(points))  # the point itself is its first neighbour
    if k < 2:
        return 0.0
    distances, _ = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(points)
    return round(float(EPSILON_PER_CORE * np.median(distances[:, -1])), 4)


@dataclass(frozen=True)
class ClusterParams:
    space: str = DEFAULT_SPACE  # auto | image | text | image+text (features.py)
    reducer: str = DEFAULT_REDUCER  # a name in registry.REDUCERS
    clusterer: str = DEFAULT_CLUSTERER  # a name in registry.CLUSTERERS
    n_components: int | None = None  # None: the reducer's own (UMAP 5, PCA 16)
    n_neighbors: int | None = None  # UMAP: size of the neighbourhood it keeps; None: 15, at most covers - 1
    min_dist: float = 0.0  # UMAP: 0 packs clusters tight, which is what HDBSCAN wants
    pre_pca: int | None = CLUSTER_PRE_PCA  # wide image vectors go through PCA to this first (UMAP's cost grows with it)
    min_cluster_size: int | None = None  # None: default_min_cluster_size(n)
    min_samples: int | None = None  # None: min(min_cluster_size, MIN_SAMPLES); more makes more noise
    max_cluster_share: float | None = MAX_CLUSTER_SHARE  # a giant cluster is split into ones under this share
    split_giant: bool = False  # set when HDBSCAN runs again to split a giant cluster
    selection_epsilon: float | None = None  # None: relative to the density after UMAP (adaptive_epsilon), 0 after PCA
    max_clusters: int | None = MAX_CLUSTERS  # merge the smallest clusters into their nearest above this
    reduce_outliers: bool = False  # assign noise covers close enough to a cluster (marked as such)
    outlier_reach: float = OUTLIER_REACH  # "close enough": within this times the cluster's radius (90th pct)
    text_weight: float = TEXT_WEIGHT  # image+text: weight of the text part against the image part
    genre_weight: float = GENRE_WEIGHT  # +genre spaces: weight of the genre probabilities (0: none)
    seed: int | None = CLUSTER_SEED  # None: faster (UMAP runs in parallel) but not reproducible
    n_covers: int | None = None  # set by resolve(): the covers these settings were made concrete for

    def check(self, n: int, what: str = "stored covers") -> None:
        """Refuse values that cannot work for `n` covers (ArgumentError); a value given is used as
        given or refused, never replaced. Only the defaults (None) adapt to the library."""
        def refuse(rule: str, value: Any) -> None:
            raise ArgumentError(f"{rule}, got {value}")

        if self.space not in SPACES:
            refuse(f"space must be one of {', '.join(SPACES)}", repr(self.space))
        if self.min_cluster_size is not None and not 2 <= self.min_cluster_size <= n:
            refuse(f"min_cluster_size must be between 2 and the {n:,} {what}", self.min_cluster_size)
        if self.min_samples is not None and self.min_samples < 1:
            refuse("min_samples must be at least 1", self.min_samples)
        if self.n_components is not None and self.n_components < 1:
            refuse("n_components must be at least 1", self.n_components)
        if self.pre_pca is not None and self.pre_pca < 1:
            refuse("pca_dim (pre_pca) must be at least 1", self.pre_pca)
        if self.n_neighbors is not None and not 2 <= self.n_neighbors < n:
            refuse(f"n_neighbors must be at least 2 and below the {n:,} {what}", self.n_neighbors)
        if self.min_dist < 0:
            refuse("min_dist must be at least 0", self.min_dist)
        if self.max_clusters is not None and self.max_clusters < 1:
            refuse("max_clusters must be at least 1 (None: never merge)", self.max_clusters)
        if self.max_cluster_share is not None and not 0 < self.max_cluster_share <= 1:
            refuse("max_cluster_share must be above 0 and at most 1 (None: never split)", self.max_cluster_share)
        if self.selection_epsilon is not None and self.selection_epsilon < 0:
            refuse("selection_epsilon must be at least 0", self.selection_epsilon)
        if self.outlier_reach <= 0:
            refuse("outlier_reach must be above 0", self.outlier_reach)
        if self.text_weight < 0:
            refuse("text_weight must be at least 0", self.text_weight)
        if self.genre_weight < 0:
            refuse("genre_weight must be at least 0", self.genre_weight)
        if self.seed is not None and self.seed < 0:
            refuse("seed must be at least 0 (None: not reproducible)", self.seed)

    def resolve(self, n: int, what: str = "stored covers") -> ClusterParams:
        """These settings with every adaptive default made concrete for `n` covers (values checked)."""
        self.check(n, what)
        mcs = self.min_cluster_size
        if mcs is None:
            mcs = max(2, min(default_min_cluster_size(n), n))
        samples = self.min_samples if self.min_samples is not None else min(mcs, MIN_SAMPLES)
        components = self.n_components or (UMAP_COMPONENTS if self.reducer == "umap" else PCA_COMPONENTS)
        neighbours = self.n_neighbors if self.n_neighbors is not None else max(2, min(UMAP_NEIGHBORS, n - 1))
        epsilon = self.selection_epsilon  # after UMAP, None stays: fit.py sets it from the reduced points
        if epsilon is None and self.reducer != "umap":
            epsilon = 0.0
        return replace(self, min_cluster_size=mcs, min_samples=samples, n_components=components,
                       n_neighbors=neighbours, n_covers=n, selection_epsilon=epsilon)

    def with_epsilon_for(self, points: Any) -> ClusterParams:
        """The adaptive selection epsilon made concrete for the reduced points (a given value is kept)."""
        if self.selection_epsilon is not None:
            return self
        return replace(self, selection_epsilon=adaptive_epsilon(points, self.min_samples or MIN_SAMPLES))

    @property
    def max_cluster_size(self) -> int:
        """HDBSCAN's cap on a cluster's size (0: none), only when splitting a giant cluster."""
        if not (self.split_giant and self.max_cluster_share) or self.n_covers is None:
            return 0
        return max(int(self.max_cluster_share * self.n_covers), 2 * (self.min_cluster_size or 0))

    def with_space_for(self, text_share: float) -> ClusterParams:
        """`auto` made concrete: image+text+genre when enough covers have text, else image+genre."""
        if self.space != "auto":
            return self
        return replace(self, space="image+text+genre" if text_share >= AUTO_TEXT_SHARE else "image+genre")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterParams:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_settings(self, **settings: Any) -> ClusterParams:
        """These settings with single fields replaced (None: keep); an unknown name is refused."""
        known = {f.name for f in fields(self)} - {"split_giant", "n_covers"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ArgumentError(f"unknown clustering setting {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(known))}")
        return replace(self, **{k: v for k, v in settings.items() if v is not None})
