"""A 2-D map of the clustered covers: one panel coloured by cluster, one by genre.

The layout comes from the same reduction the clusters were found in: `projection="umap"` (the
default) lays the reduced points out with a 2-D UMAP (euclidean: they are already UMAP's output,
so this is cheap and keeps the clusters apart as HDBSCAN saw them); `"pca"` takes their first two
principal axes (instant, flatter); `"tsne"` uses scikit-learn's t-SNE on a sample of at most 2,000
covers (about a minute on two busy cores).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coverlens.clustering.refine import NOISE
from coverlens.workspace import atomic_path

if TYPE_CHECKING:
    import numpy as np

PROJECTIONS = ("umap", "pca", "tsne")
MAX_POINTS = 4_000  # under 4,096, UMAP's 2-D layout takes exact neighbours: no second pynndescent compile
MAX_TSNE_POINTS = 2_000
MAX_LEGEND = 20


def layout_2d(reduced: np.ndarray, *, projection: str = "umap", seed: int | None = 0) -> np.ndarray:
    """(n, 2) coordinates for the map."""
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; use one of {', '.join(PROJECTIONS)}")
    if reduced.shape[1] <= 2:
        return reduced
    if projection == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(reduced) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    if projection == "umap" and len(reduced) > 3:
        import umap

        return umap.UMAP(n_components=2, n_neighbors=min(15, len(reduced) - 1), min_dist=0.1, metric="euclidean",
                         random_state=seed, n_jobs=1 if seed is not None else -1).fit_transform(reduced)
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(reduced)


def sample_indices(n: int, limit: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    import numpy as np

    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def cluster_map(
    reduced: np.ndarray,
    labels: np.ndarray,
    genres: Sequence[str],
    target: Path,
    *,
    title: str = "",
    projection: str = "umap",
    seed: int | None = 0,
) -> Path:
    """Draw the two-panel map to `target` (PNG) and return it."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keep = sample_indices(len(reduced), MAX_TSNE_POINTS if projection == "tsne" else MAX_POINTS, seed=seed or 0)
    xy = layout_2d(reduced[keep], projection=projection, seed=seed)
    labels = np.asarray(labels)[keep]
    genre_of = [genres[i] for i in keep]

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 7))
    palette = plt.get_cmap("tab20")
    noise = labels == NOISE
    left.scatter(xy[noise, 0], xy[noise, 1], s=3, c="#c8c8c8", label="noise", rasterized=True)
    clusters = sorted(set(labels.tolist()) - {NOISE})
    for n, cid in enumerate(clusters):
        mine = labels == cid
        left.scatter(xy[mine, 0], xy[mine, 1], s=4, color=palette(n % 20), rasterized=True)
        cx, cy = np.median(xy[mine], axis=0)
        left.annotate(str(cid), (cx, cy), fontsize=8, weight="bold", ha="center")
    left.set_title(f"{len(clusters)} clusters (grey: noise)")

    by_size = [g for g, _ in Counter(genre_of).most_common()]
    for n, genre in enumerate(by_size):
        mine = np.array([g == genre for g in genre_of])
        right.scatter(xy[mine, 0], xy[mine, 1], s=4, color=palette(n % 20), label=genre, rasterized=True)
    if len(by_size) <= MAX_LEGEND:
        right.legend(markerscale=3, fontsize=7, loc="best")
    right.set_title(f"{len(by_size)} genres" + ("" if len(by_size) <= MAX_LEGEND else " (colours repeat)"))

    shown = f"{len(keep):,} of {len(reduced):,} covers" if len(keep) < len(reduced) else f"{len(keep):,} covers"
    fig.suptitle(f"{title} - {shown}, {projection.upper()} layout".strip(" -"))
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return target
