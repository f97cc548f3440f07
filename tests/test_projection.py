"""Compact vectors: the PCA / whitening projection, its file in the workspace, its part in the identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coverlens.catalog import library_root
from coverlens.embedders.projection import Projection, fit_projection, project
from coverlens.embedders.projection_file import projection_file, workspace_projection
from coverlens.errors import StoreError
from coverlens.images import open_image
from coverlens.store import CoverStore
from fakes import FakeEmbedder
from indexing import index, make_workspace, stored


def correlated(n: int = 300, d: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6)) @ rng.normal(size=(6, d)) + 0.05 * rng.normal(size=(n, d))).astype(np.float32)


def test_pca_components_are_orthonormal_and_keep_the_variance() -> None:
    data = correlated()
    projection = fit_projection(data, 6, "pca")
    assert projection.dimension == 6 and projection.input_dimension == 40
    np.testing.assert_allclose(projection.components @ projection.components.T, np.eye(6), atol=1e-5)
    centred = data - data.mean(axis=0)
    kept = np.linalg.norm(centred @ projection.components.T) ** 2 / np.linalg.norm(centred) ** 2
    assert kept > 0.99  # six factors made the data: six components hold nearly all of it
    out = projection.apply(data)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_whitening_gives_the_train_vectors_unit_variance_per_component() -> None:
    data = correlated()
    projection = fit_projection(data, 6, "whiten")
    raw = (data - projection.mean) @ projection.components.T * projection.scale
    np.testing.assert_allclose(raw.std(axis=0, ddof=1), 1.0, rtol=1e-3)


def test_fit_is_deterministic_and_a_file_round_trip_keeps_the_hash() -> None:
    data = correlated()
    first, second = fit_projection(data, 8, "pca"), fit_projection(data.copy(), 8, "pca")
    assert first.sha256 == second.sha256
    again = Projection.from_bytes(first.to_bytes())
    assert again.identity == first.identity
    np.testing.assert_array_equal(again.apply(data), first.apply(data))
    assert fit_projection(data, 8, "whiten").sha256 != first.sha256
    assert fit_projection(data[:20], 500, "pca").dimension == 19  # never more components than vectors - 1
    with pytest.raises(ValueError, match="kind"):
        fit_projection(data, 8, "ica")


def test_projected_embedder_names_the_projection_in_its_identity(tmp_path: Path) -> None:
    inner = FakeEmbedder(dimension=24)
    data = correlated(d=24)
    embedder = project(inner, fit_projection(data, 8, "pca"))
    assert embedder.name == inner.name and embedder.dimension == 8
    assert embedder.identity["projection"]["sha256"] == fit_projection(data, 8, "pca").sha256
    assert embedder.identity["input_dimension"] == 24
    assert project(inner, None) is inner
    with pytest.raises(ValueError, match="cannot follow"):
        project(FakeEmbedder(dimension=12), fit_projection(data, 8, "pca"))


def test_workspace_projection_is_fitted_once_on_the_train_split(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path, genres=3, per_genre=8)  # 24 covers, about 19 in train
    inner = FakeEmbedder(dimension=24)
    workspace.model_dir.mkdir(parents=True, exist_ok=True)
    replaced = workspace.model_dir / "projection-fake-0123456789ab.npz"
    other = workspace.model_dir / "projection-fake-x-0123456789ab.npz"
    replaced.write_bytes(b"a projection of a model replaced since")
    other.write_bytes(b"another embedder's")
    projection = workspace_projection(workspace, inner, dimension=6)
    assert not replaced.exists() and other.exists()
    assert projection is not None and projection.dimension == 6
    assert 15 <= projection.fitted_on <= 21 and sum(inner.calls) == projection.fitted_on  # train covers only
    assert projection_file(workspace, inner).exists()
    again = workspace_projection(workspace, inner, dimension=6)
    assert again is not None and again.sha256 == projection.sha256
    assert sum(inner.calls) == projection.fitted_on  # loaded, not fitted again
    # a train split smaller than the dimension: the full vectors are kept, nothing is embedded for it,
    # and the decision is kept too: the identity stays when the library grows
    small = FakeEmbedder(dimension=300, seed=3)
    assert workspace_projection(workspace, small, dimension=200) is None and not small.calls
    assert projection_file(workspace, small).with_suffix(".none").exists()
    assert workspace_projection(workspace, small, dimension=6) is None and not small.calls
    assert workspace_projection(workspace, FakeEmbedder(dimension=6), dimension=6) is None  # small already


def test_a_changed_projection_is_refused_like_a_changed_model(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path, genres=3, per_genre=8)
    inner = FakeEmbedder(dimension=24)
    pca = project(inner, workspace_projection(workspace, inner, dimension=6))
    index(workspace, pca)
    collection = stored(workspace, pca)
    assert collection.count() == 24
    vectors = collection.fetch()
    assert vectors.vectors.shape == (24, 6)
    root = library_root(workspace)
    expected = pca.embed([open_image(root / m["path"]) for m in vectors.metadatas])
    np.testing.assert_allclose(vectors.vectors, expected, atol=1e-5)  # stored = inner vectors, projected
    whitened = project(inner, fit_projection(correlated(d=24), 6, "whiten"))
    with CoverStore.open(workspace) as store, pytest.raises(StoreError, match="not comparable"):
        store.collection_for(whitened.name, whitened.identity)
