"""The built-in steps: reducers `umap` and `pca`, clusterer `hdbscan` (registered in registry.py).
Heavy imports stay inside."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from coverlens.clustering.params import ClusterParams


class UMAPReducer:
    """umap-learn, cosine. With a seed it is reproducible and runs on one thread (umap's rule)."""

    def __init__(self, params: ClusterParams) -> None:
        self.params = params
        self.model: Any = None

    def _build(self) -> Any:
        import umap  # lazy: 10-20 s of import and JIT compile on first use (see warm.py)

        p = self.params
        return umap.UMAP(n_components=p.n_components, n_neighbors=p.n_neighbors,
                         min_dist=p.min_dist, metric="cosine", random_state=p.seed,
                         n_jobs=1 if p.seed is not None else -1)

    def fit(self, x: np.ndarray) -> UMAPReducer:
        self.model = self._build().fit(x)
        return self

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        self.model = self._build()
        return self.model.fit_transform(x).astype("float32")

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self.model.transform(x).astype("float32")


class PCAReducer:
    def __init__(self, params: ClusterParams) -> None:
        from sklearn.decomposition import PCA

        self.model = PCA(n_components=params.n_components, random_state=params.seed)

    def fit(self, x: np.ndarray) -> PCAReducer:
        self.model.n_components = min(self.model.n_components, *x.shape)
        self.model.fit(x)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self.model.transform(x).astype("float32")


def hdbscan_clusterer(params: ClusterParams) -> Any:
    """Euclidean on the reduced points (hdbscan's `cosine` breaks prediction data, see DESIGN.md)."""
    import hdbscan

    return hdbscan.HDBSCAN(min_cluster_size=params.min_cluster_size, min_samples=params.min_samples,
                           metric="euclidean", prediction_data=True, max_cluster_size=params.max_cluster_size,
                           cluster_selection_epsilon=float(params.selection_epsilon or 0.0))
