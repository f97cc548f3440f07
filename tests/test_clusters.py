"""Tests for coverlens.search.clusters, cluster_files, cluster_map and `coverlens clusters`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from coverlens.cli import main
from coverlens.errors import WorkspaceError
from coverlens.search.cluster_files import ClusterFiles, load_clusters, save_clusters
from coverlens.search.cluster_map import cluster_map, layout_2d
from coverlens.search.clusters import (
    DEFAULT_PCA_DIM,
    NOISE,
    ClusterReport,
    cluster_vectors,
    default_min_cluster_size,
    place_cover,
    place_covers,
)
from coverlens.workspace import Workspace
from fakes import FakeCollection, FakeStore, install_fake_store

GENRES = ["ambient", "blues", "country", "disco"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def blobs(per: int = 50, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """4 well-separated gaussian blobs on the unit sphere; their centres, and one genre per blob."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(GENRES), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.concatenate([c + rng.normal(scale=0.15 / np.sqrt(dim), size=(per, dim)) for c in centres])
    return vectors.astype(np.float32), centres, [g for g in GENRES for _ in range(per)]


@pytest.fixture(scope="module")
def clustered() -> tuple[ClusterReport, object, np.ndarray, np.ndarray, list[str]]:
    vectors, centres, genres = blobs()
    ids = [f"id{i:03d}" for i in range(len(vectors))]
    paths = [f"{g}/{i}.jpg" for i, g in enumerate(genres)]
    report, model = cluster_vectors(vectors, genres, ids, paths, embedder="fake")
    return report, model, vectors, centres, genres


def test_blobs_become_pure_clusters(clustered) -> None:
    report, model, vectors, _, genres = clustered
    assert len(report.clusters) == 4
    assert report.ari > 0.9 and report.nmi > 0.9
    assert report.noise_share < 0.05
    assert sorted(c.dominant_genre for c in report.clusters) == GENRES
    for summary in report.clusters:
        assert summary.purity == 1.0
        assert summary.genre_mix == {summary.dominant_genre: summary.size}
        assert 1 <= len(summary.exemplar_ids) <= 8 and len(summary.exemplar_paths) == len(summary.exemplar_ids)
        assert all(p.startswith(summary.dominant_genre + "/") for p in summary.exemplar_paths)
    assert report.n_covers == 200 and report.embedder == "fake"
    assert report.params["pca_dim"] == DEFAULT_PCA_DIM and report.params["input_dim"] == 64
    assert report.params["min_cluster_size"] == default_min_cluster_size(200) == 5
    assert model.reduce(vectors).shape == (200, DEFAULT_PCA_DIM)


def test_place_cover_finds_the_right_blob(clustered) -> None:
    report, model, _, centres, _ = clustered
    genre_of = {c.cluster_id: c.dominant_genre for c in report.clusters}
    rng = np.random.default_rng(9)
    for g, centre in enumerate(centres):
        point = centre + rng.normal(scale=0.15 / np.sqrt(64), size=64)
        cluster, strength = place_cover(model, point.astype(np.float32))
        assert genre_of[cluster] == GENRES[g] and 0.0 < strength <= 1.0
    labels, strengths = place_covers(model, centres.astype(np.float32))
    assert [genre_of[int(c)] for c in labels] == GENRES and strengths.shape == (4,)


def test_noise_counts_as_its_own_label_in_ari() -> None:
    vectors, _, genres = blobs(per=30)
    rng = np.random.default_rng(1)
    scattered = rng.normal(size=(40, 64)).astype(np.float32)  # points far from every blob
    all_vectors = np.concatenate([vectors, scattered])
    all_genres = genres + ["ambient"] * 40
    ids = [str(i) for i in range(len(all_vectors))]
    report, model = cluster_vectors(all_vectors, all_genres, ids, ids, min_cluster_size=10)
    assert report.noise_share > 0.0
    assert report.noise_share == pytest.approx(float(np.mean(model.labels == NOISE)))
    assert sum(c.size for c in report.clusters) == round(len(ids) * (1 - report.noise_share))


def test_all_noise_places_nothing() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    ids = [str(i) for i in range(30)]
    report, model = cluster_vectors(vectors, ["a"] * 30, ids, ids, min_cluster_size=25, min_samples=25)
    assert report.clusters == [] and report.noise_share == 1.0
    assert place_cover(model, vectors[0]) == (NOISE, 0.0)


def test_small_dimension_skips_pca() -> None:
    vectors, _, genres = blobs(per=20, dim=8)
    ids = [str(i) for i in range(len(vectors))]
    report, model = cluster_vectors(vectors, genres, ids, ids, pca_dim=32)
    assert model.pca is None and report.params["pca_dim"] is None
    assert len(report.clusters) == 4


def test_mismatched_inputs_are_refused() -> None:
    vectors, _, genres = blobs(per=5)
    with pytest.raises(ValueError, match="20 vectors but 19 genres"):
        cluster_vectors(vectors, genres[:-1], genres, genres)


def test_save_and_load_round_trip(clustered, workspace: Workspace) -> None:
    report, model, vectors, _, _ = clustered
    assert load_clusters(workspace, "fake") is None
    files = save_clusters(workspace, report, model)
    assert files == ClusterFiles.of(workspace, "fake")
    assert files.model == workspace.root / "clusters" / "fake.pkl"
    assert files.report == workspace.root / "clusters" / "fake.json"
    assert json.loads(files.report.read_text())["clusters"][0]["size"] == report.clusters[0].size
    with open(files.labels, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200 and rows[0].keys() == {"id", "cluster", "probability"}
    assert [int(r["cluster"]) for r in rows] == model.labels.tolist()
    loaded = load_clusters(workspace, "fake")
    assert loaded is not None
    again, model_again = loaded
    assert again == report
    assert place_cover(model_again, vectors[7]) == place_cover(model, vectors[7])


def test_a_damaged_model_file_is_reported(clustered, workspace: Workspace) -> None:
    report, model, *_ = clustered
    files = save_clusters(workspace, report, model)
    files.model.write_bytes(b"garbage")
    with pytest.raises(WorkspaceError, match="fake.pkl"):
        load_clusters(workspace, "fake")


def test_map_is_a_png(clustered, tmp_path: Path) -> None:
    report, model, vectors, _, genres = clustered
    target = cluster_map(model.reduce(vectors), model.labels, genres, tmp_path / "reports" / "map.png",
                         title="fake")
    assert target.read_bytes()[:8] == PNG_MAGIC


def test_tsne_layout_is_two_dimensional(clustered) -> None:
    from threadpoolctl import threadpool_limits

    _, model, vectors, _, _ = clustered
    with threadpool_limits(1):  # t-SNE's OpenMP threads spin for seconds when other tests share the cores
        assert layout_2d(model.reduce(vectors[:40]), projection="tsne").shape == (40, 2)
    with pytest.raises(ValueError, match="projection"):
        layout_2d(vectors, projection="umap")


def test_cli_clusters(monkeypatch: pytest.MonkeyPatch, workspace: Workspace,
                      capsys: pytest.CaptureFixture[str]) -> None:
    vectors, _, genres = blobs(per=40)
    metas = [{"path": f"{g}/{i}.jpg", "genre": g, "genres": g, "split": "train", "width": 32, "height": 32}
             for i, g in enumerate(genres)]
    install_fake_store(monkeypatch, FakeStore(FakeCollection([f"c{i}" for i in range(160)], vectors, metas)))
    assert main(["clusters", "--pca-dim", "8", "-w", str(workspace.root)]) == 0
    out = capsys.readouterr().out
    assert "dominant genre" in out and "ARI 1.000" in out and "noise" in out
    assert (workspace.reports_dir / "clusters-finetuned.png").read_bytes()[:8] == PNG_MAGIC
    loaded = load_clusters(workspace, "finetuned")
    assert loaded is not None and loaded[0].params["pca_dim"] == 8 and len(loaded[0].clusters) == 4
    install_fake_store(monkeypatch, FakeStore())
    assert main(["clusters", "-w", str(workspace.root)]) == 8
    assert "run `coverlens index`" in capsys.readouterr().err
