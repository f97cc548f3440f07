"""The default recipe, UMAP then HDBSCAN, on generated blobs. All UMAP tests live here: umap-learn's
import and numba's JIT compile (10-20 s, more on busy cores) are paid once for the module."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from coverlens.clustering.chart import cluster_map
from coverlens.clustering.fit import cluster_vectors
from coverlens.clustering.params import ClusterParams
from coverlens.clustering.place import place_by_transform
from coverlens.clustering.warm import is_warm
from test_clusters import PLANTED, PNG_MAGIC, blobs, cover_texts

PARAMS = ClusterParams(seed=7)


@pytest.fixture(scope="module")
def fitted():
    vectors, centres, genres = blobs(per=40, dim=96)  # wider than pre_pca: PCA 64, then UMAP 5-d
    ids = [f"c{i:03d}" for i in range(len(vectors))]
    return cluster_vectors(vectors, genres, ids, ids, params=PARAMS, texts=cover_texts(ids, genres)), vectors, genres


def test_umap_then_hdbscan_finds_the_blobs_and_draws_the_map(fitted, tmp_path: Path) -> None:
    result, vectors, genres = fitted
    report = result.report
    assert is_warm(large=False) and report.compile_seconds >= 0.0 and report.seconds > 0
    assert report.params["reducer"] == "umap" and report.params["n_components"] == 5
    assert report.space == "image+text+genre"  # auto: every cover has text, and a genre
    assert result.fitted.reduced.shape == (160, 5) and result.fitted.features.x.shape[0] == 160
    assert len(report.clusters) == 4 and report.nmi > 0.9 and report.noise_share < 0.1
    assert {c.dominant_genre: c.words[0] for c in report.clusters} == PLANTED
    target = cluster_map(result.fitted.reduced, result.model.labels, genres, tmp_path / "map.png", projection="umap")
    assert target.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow  # UMAP.transform compiles its own code: 5-25 s more
def test_placing_by_umap_transform_agrees_with_the_fitted_labels(fitted) -> None:
    result, vectors, _ = fitted
    labels, strengths = place_by_transform(result, vectors[::8])
    assert np.mean(labels == result.model.labels[::8]) >= 0.9 and strengths.shape == (20,)


def test_the_same_seed_gives_the_same_clusters(fitted) -> None:
    result, vectors, genres = fitted
    again = cluster_vectors(vectors, genres, result.model.ids, result.model.ids, params=replace(PARAMS, space="image"))
    first = cluster_vectors(vectors, genres, result.model.ids, result.model.ids, params=replace(PARAMS, space="image"))
    assert again.report.compile_seconds == 0.0  # warm now: compile is paid once per process
    assert np.array_equal(again.model.labels, first.model.labels) and len(again.report.clusters) == 4
    assert np.allclose(again.fitted.reduced, first.fitted.reduced)
    assert again.fitted.features.x.shape == (160, 64)  # image vectors wider than pre_pca: PCA 64 first
