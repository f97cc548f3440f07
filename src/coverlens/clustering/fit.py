"""Fit a clustering: features -> reducer -> clusterer -> merge -> outliers -> summaries and words.

Pure over arrays: vectors, genres, ids and paths in; records out. Saving is `files.py`, the whole
job over a store is `jobs.py`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from coverlens.clustering.features import Features, TextSource, build_features, texts_for
from coverlens.clustering.params import GIANT_SHARE, ClusterParams
from coverlens.clustering.refine import NOISE, merge_small, reduce_outliers, renumber_by_size
from coverlens.clustering.registry import build_clusterer, build_reducer, fit_transform
from coverlens.clustering.report import ClusterReport, agreement, summarise
from coverlens.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

# How each cover got its label (the labels file's `assigned` column).
BY_CLUSTERER = "clusterer"  # the clusterer put it in its cluster
BY_OUTLIERS = "outlier-reduction"  # noise, assigned to the nearest close cluster afterwards
AS_NOISE = "noise"
NO_SIGNAL = "no-signal"  # nothing to cluster in this space (no text)


@dataclass
class ClusterModel:
    """What placing a new cover needs: each clustered cover's label, strength and how it got it."""

    embedder: str
    ids: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    assigned: list[str]
    _rows: dict[str, int] | None = field(default=None, repr=False)

    def label_of(self, cover_id: str) -> int | None:
        """The cluster of a clustered cover (-1: noise), None for a cover clustered no time."""
        if self._rows is None:
            self._rows = {cover: row for row, cover in enumerate(self.ids)}
        row = self._rows.get(cover_id)
        return None if row is None else int(self.labels[row])

    def members(self, cluster_id: int, limit: int | None = None) -> list[tuple[str, float, str]]:
        """(id, strength, how assigned) of a cluster's covers, the clusterer's strongest first."""
        rows = [(self.ids[i], float(self.probabilities[i]), self.assigned[i])
                for i in range(len(self.ids)) if int(self.labels[i]) == cluster_id]
        rows.sort(key=lambda row: (row[2] != BY_CLUSTERER, -row[1], row[0]))
        return rows[:limit]


@dataclass
class Fitted:
    """The fitted steps, in memory only (the map and the transform placement use them)."""

    features: Features
    reducer: Any
    clusterer: Any
    reduced: np.ndarray  # (n, k): reduced points, zeros for covers with no signal
    to_final: dict[int, int]  # clusterer's label -> final label


@dataclass
class Clustering:
    report: ClusterReport
    model: ClusterModel
    fitted: Fitted


def _giant(labels: np.ndarray) -> bool:
    """One cluster holds more than GIANT_SHARE of the covers: it says nothing, split it."""
    import numpy as np

    clustered = labels[labels != NOISE]
    return bool(len(clustered)) and np.bincount(clustered).max() > GIANT_SHARE * len(labels)


def cluster_vectors(
    vectors: np.ndarray,
    genres: Sequence[str],
    ids: Sequence[str],
    paths: Sequence[str],
    *,
    embedder: str = "",
    params: ClusterParams | None = None,
    texts: TextSource | None = None,
) -> Clustering:
    """Cluster covers in `params.space`; summarise each cluster and score the clusters against genres."""
    import numpy as np

    from coverlens.clustering.warm import APPROXIMATE_FROM, warm_up
    from coverlens.clustering.words import cluster_words

    n = len(vectors)
    if not (len(genres) == len(ids) == len(paths) == n):
        raise ValueError(f"{n} vectors but {len(genres)} genres, {len(ids)} ids, {len(paths)} paths")
    if n < 3:
        raise StoreError(f"need at least 3 stored covers to cluster, got {n}; index more covers first")
    params = params or ClusterParams()
    params.check(n)  # refused before umap's compile is paid
    compile_seconds = warm_up(large=n >= APPROXIMATE_FROM) if params.reducer == "umap" else 0.0
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    text = texts_for(ids, texts)
    params = params.with_space_for(sum(1 for t in text if t) / n)
    features = build_features(vectors, text, params, genres)
    params = replace(params, space=features.space or params.space)  # e.g. no genre part: said so
    usable = features.usable
    if usable.sum() < 3:
        raise StoreError(f"need at least 3 covers with a signal in the {params.space} space, got {usable.sum()}")
    params = params.resolve(int(usable.sum()), "stored covers" if usable.all() else f"covers with {params.space}")
    lap("features")
    reducer = build_reducer(params)
    points = fit_transform(reducer, features.x)
    params = params.with_epsilon_for(points)
    lap("reduce")
    clusterer = build_clusterer(params)
    clusterer.fit(points)
    raw = np.asarray(clusterer.labels_)
    if params.max_cluster_share and _giant(raw):
        params = replace(params, split_giant=True)
        clusterer = build_clusterer(params)
        clusterer.fit(points)
        raw = np.asarray(clusterer.labels_)
    lap("cluster")

    merged, into = merge_small(points, raw, params.max_clusters)
    final, renumbered = renumber_by_size(merged)
    to_final = {int(c): renumbered[into.get(int(c), int(c))] for c in set(raw.tolist()) - {NOISE}}
    merged_from: dict[int, list[int]] = {}
    for old, new in into.items():
        merged_from.setdefault(renumbered[new], []).append(int(old))
    noise_before = float(np.mean(final == NOISE)) * usable.sum() / n + (1 - usable.mean())
    reassigned_rows = np.zeros(len(final), dtype=bool)
    if params.reduce_outliers:
        final, reassigned_rows = reduce_outliers(points, final, params.outlier_reach)
    lap("refine")

    labels = np.full(n, NOISE, dtype=int)
    labels[usable] = final
    probabilities = np.zeros(n, dtype=np.float32)
    probabilities[usable] = np.asarray(clusterer.probabilities_, dtype=np.float32)
    reassigned = np.zeros(n, dtype=bool)
    reassigned[usable] = reassigned_rows
    reduced = np.zeros((n, points.shape[1]), dtype=np.float32)
    reduced[usable] = points
    assigned = [NO_SIGNAL if not usable[i] else BY_OUTLIERS if reassigned[i] else
                AS_NOISE if labels[i] == NOISE else BY_CLUSTERER for i in range(n)]
    words = cluster_words(text, labels) if any(text) else {}
    lap("words")

    report = ClusterReport(
        embedder=embedder, n_covers=n,
        clusters=summarise(reduced, labels, probabilities, genres, ids, paths, reassigned=reassigned,
                           words=words, merged_from=merged_from),
        noise_share=round(float(np.mean(labels == NOISE)), 4), params=params.to_dict(),
        seconds=round(sum(timings.values()), 3), space=params.space, noise_share_before=round(noise_before, 4),
        reassigned=int(reassigned.sum()), found_clusters=len(set(raw.tolist()) - {NOISE}),
        no_signal=int((~usable).sum()), timings=timings, compile_seconds=round(compile_seconds, 3),
        **agreement(labels, genres),
    )
    model = ClusterModel(embedder, list(ids), labels, probabilities, assigned)
    return Clustering(report, model, Fitted(features, reducer, clusterer, reduced, to_final))
