"""The genre part of the default feature space: genre probabilities predicted out of fold, so a cover's
own genre never shapes its own features; and the fallbacks where covers have no genre or no text."""

from __future__ import annotations

import numpy as np
import pytest

from coverlens.clustering.features import build_features
from coverlens.clustering.fit import cluster_vectors
from coverlens.clustering.genre_part import MIN_LABELLED, genre_probabilities
from coverlens.clustering.params import ClusterParams
from test_clusters import blobs, cover_texts

PCA = ClusterParams(reducer="pca", n_components=8)


def accuracy(p: np.ndarray, genres: list[str]) -> float:
    classes = sorted(set(genres))
    return float(np.mean(np.array(classes)[p.argmax(axis=1)] == np.array(genres)))


def test_probabilities_are_out_of_fold_so_random_genres_stay_at_chance() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(400, 200)).astype(np.float32)  # 200 dims: a fit in-sample would memorise
    genres = [f"g{g}" for g in rng.integers(0, 4, size=400)]
    p = genre_probabilities(noise, None, np.zeros(400, dtype=bool), genres, seed=0)
    assert p is not None and p.shape == (400, 4) and np.allclose(p.sum(axis=1), 1, atol=1e-4)
    assert accuracy(p, genres) < 0.40  # chance 0.25; memorised labels would give ~1.0


def test_informative_parts_predict_the_genre_and_unlabelled_covers_get_one() -> None:
    vectors, _, genres = blobs(per=40, spread=2.5)
    ids = [f"c{i}" for i in range(len(genres))]
    texts = cover_texts(ids, genres)
    shown = [g if i % 8 else "" for i, g in enumerate(genres)]  # every 8th cover unlabelled
    features = build_features(vectors, [texts[i] for i in ids], ClusterParams(space="image+text+genre"), shown)
    assert features.space == "image+text+genre"
    probabilities = features.x[:, -4:] / ClusterParams().genre_weight
    assert accuracy(probabilities, genres) > 0.8  # chance 0.25
    unlabelled = [i for i, g in enumerate(shown) if not g]
    assert accuracy(probabilities[unlabelled], [genres[i] for i in unlabelled]) > 0.8


def test_without_genres_or_text_the_space_says_what_it_fell_back_to() -> None:
    vectors, _, genres = blobs(per=40)
    ids = [f"c{i}" for i in range(len(genres))]
    few = [g if i < MIN_LABELLED - 1 else "" for i, g in enumerate(genres)]
    assert genre_probabilities(vectors, None, np.zeros(len(ids), dtype=bool), few, seed=0) is None
    unlabelled = cluster_vectors(vectors, [""] * len(ids), ids, ids, params=PCA)
    assert unlabelled.report.space == "image"  # auto: no text, no genres
    no_text = cluster_vectors(vectors, genres, ids, ids, params=PCA)
    assert no_text.report.space == "image+genre" and no_text.report.nmi > 0.9
    off = cluster_vectors(vectors, genres, ids, ids, params=PCA, texts=cover_texts(ids, genres))
    assert off.report.space == "image+text+genre"
    weightless = cluster_vectors(vectors, genres, ids, ids, texts=cover_texts(ids, genres),
                                 params=ClusterParams(reducer="pca", n_components=8, genre_weight=0))
    assert weightless.report.space == "image+text"


def test_a_negative_genre_weight_is_refused() -> None:
    from coverlens.errors import ArgumentError

    with pytest.raises(ArgumentError, match="genre_weight must be at least 0"):
        ClusterParams(genre_weight=-1).check(100)


def test_the_genre_space_is_the_probabilities_alone_and_needs_genres() -> None:
    from coverlens.errors import CoverlensError

    vectors, _, genres = blobs(per=40)
    ids = [f"c{i}" for i in range(len(genres))]
    texts = cover_texts(ids, genres)
    features = build_features(vectors, [texts[i] for i in ids], ClusterParams(space="genre"), genres)
    assert features.x.shape == (160, 4) and np.allclose(features.x.sum(axis=1), 1, atol=1e-4)
    assert accuracy(features.x, genres) > 0.9
    with pytest.raises(CoverlensError, match="needs covers with a genre"):
        build_features(vectors, [texts[i] for i in ids], ClusterParams(space="genre"), [""] * len(ids))
