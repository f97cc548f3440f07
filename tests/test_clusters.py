"""Tests for coverlens.clustering without UMAP (the PCA reducer or a toy one): registry, defaults,
merging, outlier reduction, c-TF-IDF words, placement, files, map and `coverlens clusters`.
The UMAP path is tested in test_clusters_umap.py (one module: its JIT compile is paid once)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from coverlens.cli import main
from coverlens.clustering.chart import cluster_map, layout_2d
from coverlens.clustering.files import ClusterFiles, load_clusters, save_clusters
from coverlens.clustering.fit import AS_NOISE, BY_CLUSTERER, BY_OUTLIERS, NO_SIGNAL, cluster_vectors
from coverlens.clustering.params import ClusterParams, default_min_cluster_size
from coverlens.clustering.place import knn_vote, place_cover
from coverlens.clustering.refine import NOISE, merge_small
from coverlens.clustering.registry import REDUCERS, build_reducer, reducer_names, register_reducer
from coverlens.clustering.words import cluster_words, terms
from coverlens.errors import ArgumentError, CoverlensError, StoreError, WorkspaceError
from coverlens.records import Hit
from coverlens.workspace import Workspace
from test_similar import FakeCollection, FakeStore, install_fake_store

GENRES = ["ambient", "blues", "country", "disco"]
PLANTED = {"ambient": "drone", "blues": "delta", "country": "rodeo", "disco": "boogie"}
FILLER = ["love", "night", "greatest", "hits", "volume", "live", "records", "songs", "world", "music"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PCA = ClusterParams(reducer="pca", n_components=8)


def blobs(per: int = 50, dim: int = 64, seed: int = 0,
          spread: float = 0.15) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """4 well-separated gaussian blobs on the unit sphere; their centres, and one genre per blob."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(GENRES), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.concatenate([c + rng.normal(scale=spread / np.sqrt(dim), size=(per, dim)) for c in centres])
    return vectors.astype(np.float32), centres, [g for g in GENRES for _ in range(per)]


def cover_texts(ids: list[str], genres: list[str], seed: int = 0) -> dict[str, str]:
    """OCR-like text: the genre's planted word glued to filler words (no spaces), plus loose filler."""
    rng = np.random.default_rng(seed)
    out = {}
    for n, (cover, genre) in enumerate(zip(ids, genres, strict=True)):
        word, glue, draw = PLANTED[genre], rng.choice(FILLER), rng.random()
        # mostly glued to other words, on every 5th cover alone (as OCR reads them)
        glued = word if n % 5 == 0 else f"{word}{glue}" if draw < 0.5 else f"{glue}{word}{rng.choice(FILLER)}"
        out[cover] = f"{glued.upper()} {rng.choice(FILLER)} {rng.choice(FILLER)}"
    return out


@pytest.fixture(scope="module")
def clustered():
    vectors, centres, genres = blobs()
    ids = [f"id{i:03d}" for i in range(len(vectors))]
    paths = [f"{g}/{i}.jpg" for i, g in enumerate(genres)]
    result = cluster_vectors(vectors, genres, ids, paths, embedder="fake", params=PCA,
                             texts=cover_texts(ids, genres))
    return result, vectors, centres, genres


def test_blobs_become_pure_clusters_labelled_by_their_planted_word(clustered) -> None:
    result, _, _, _ = clustered
    report = result.report
    assert len(report.clusters) == 4 and report.ari > 0.9 and report.nmi > 0.9 and report.noise_share < 0.05
    assert [c.cluster_id for c in report.clusters] == [0, 1, 2, 3]  # renumbered, largest first
    for summary in report.clusters:
        assert summary.purity == 1.0 and summary.genre_mix == {summary.dominant_genre: summary.size}
        assert 1 <= len(summary.exemplar_ids) <= 8 and len(summary.exemplar_paths) == len(summary.exemplar_ids)
        assert all(p.startswith(summary.dominant_genre + "/") for p in summary.exemplar_paths)
        assert summary.words[0] == PLANTED[summary.dominant_genre]
        assert summary.title().startswith(PLANTED[summary.dominant_genre])
    assert report.n_covers == 200 and report.embedder == "fake" and report.space == "image+text+genre"  # auto
    assert report.params["reducer"] == "pca" and report.params["min_cluster_size"] == 10
    assert report.compile_seconds == 0.0 and set(report.timings) == {"features", "reduce", "cluster", "refine",
                                                                      "words"}


def test_words_survive_missing_spaces_and_skip_pieces_of_one_word() -> None:
    assert "jazz" in terms("NIGHTJAZZCLUB") and "nightjazzclub" in terms("NIGHTJAZZCLUB")
    assert terms("the and 1999 of") == []
    texts = ["THEPOETRYCLUB"] * 6 + ["POETRYNIGHT"] * 4 + ["poetry"] * 2 + ["CHEFTABLE live"] * 12
    labels = np.array([0] * 12 + [1] * 12)
    words = cluster_words(texts, labels)
    assert words[0][0] == "poetry" and not any("etryclub" in w or "oetryclu" in w for w in words[0])
    assert words[1][0] == "cheftable"  # never alone: its pieces are not words


def test_defaults_adapt_to_the_library_size() -> None:
    assert default_min_cluster_size(300) == 10
    assert default_min_cluster_size(4_452) == 22 and default_min_cluster_size(50_000) == 250
    small, large = ClusterParams().resolve(1_000), ClusterParams().resolve(50_000)
    assert small.min_cluster_size == 10 and large.min_cluster_size == 250
    assert small.min_samples == large.min_samples == 2 and small.n_components == 5
    assert small.max_cluster_size == 0  # no cap unless a giant cluster is being split
    split = replace(ClusterParams(), split_giant=True)
    assert split.resolve(1_000).max_cluster_size == 200 and split.resolve(50_000).max_cluster_size == 10_000
    assert ClusterParams(reducer="pca").resolve(100).n_components == 16
    assert small.selection_epsilon is None and ClusterParams(reducer="pca").resolve(100).selection_epsilon == 0.0
    assert ClusterParams().resolve(8).n_neighbors == 7
    assert ClusterParams().resolve(20).min_cluster_size == 10 and ClusterParams().resolve(5).min_cluster_size == 5
    assert ClusterParams(min_cluster_size=20, n_neighbors=19).resolve(20).min_cluster_size == 20  # as given


@pytest.mark.parametrize(("settings", "message"), [
    ({"min_cluster_size": 40}, "min_cluster_size must be between 2 and the 20 stored covers, got 40"),
    ({"min_cluster_size": 1}, "min_cluster_size must be between 2 and the 20 stored covers, got 1"),
    ({"min_samples": 0}, "min_samples must be at least 1, got 0"),
    ({"pre_pca": 0}, "pca_dim (pre_pca) must be at least 1, got 0"),
    ({"n_components": 0}, "n_components must be at least 1, got 0"),
    ({"n_neighbors": 20}, "n_neighbors must be at least 2 and below the 20 stored covers, got 20"),
    ({"max_clusters": 0}, "max_clusters must be at least 1 (None: never merge), got 0"),
    ({"max_cluster_share": 1.5}, "max_cluster_share must be above 0 and at most 1"),
    ({"outlier_reach": 0.0}, "outlier_reach must be above 0, got 0.0"),
    ({"seed": -1}, "seed must be at least 0 (None: not reproducible), got -1"),
    ({"space": "colour"},
     "space must be one of auto, image, text, image+text, image+genre, image+text+genre, genre, got 'colour'"),
])
def test_values_out_of_range_are_refused_never_replaced(settings: dict, message: str) -> None:
    with pytest.raises(ArgumentError) as refused:
        ClusterParams(**settings).resolve(20)
    assert str(refused.value).startswith(message)
    vectors, _, genres = blobs(per=5)
    ids = [str(i) for i in range(20)]
    with pytest.raises(ArgumentError):  # before anything is fitted
        cluster_vectors(vectors, genres, ids, ids, params=ClusterParams(reducer="pca", **settings))


def test_unknown_settings_and_too_few_covers_are_refused(workspace: Workspace) -> None:
    with pytest.raises(ArgumentError, match="unknown clustering setting pca_dimension"):
        ClusterParams().with_settings(pca_dimension=8)
    assert ClusterParams().with_settings(min_samples=None, reducer="pca").reducer == "pca"  # None: keep
    vectors, _, genres = blobs(per=1)
    with pytest.raises(StoreError, match="need at least 3 stored covers to cluster, got 2"):
        cluster_vectors(vectors[:2], genres[:2], ["a", "b"], ["a", "b"])


class HalfReducer:
    """A toy reducer: keeps the first half of the columns. Registered with one line."""

    fitted = 0

    def __init__(self, params: ClusterParams) -> None:
        self.params = params

    def fit(self, x: np.ndarray) -> HalfReducer:
        HalfReducer.fitted += 1
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x[:, : x.shape[1] // 2]


def test_a_new_reducer_is_one_class_and_one_registration() -> None:
    register_reducer("half")(HalfReducer)
    try:
        assert "half" in reducer_names() and {"umap", "pca"} <= set(reducer_names())
        vectors, _, genres = blobs(per=30)
        ids = [str(i) for i in range(len(vectors))]
        params = ClusterParams(space="image", reducer="half", pre_pca=None)
        result = cluster_vectors(vectors, genres, ids, ids, params=params)
        assert HalfReducer.fitted == 1 and result.fitted.reduced.shape == (120, 32)
        assert len(result.report.clusters) == 4 and result.report.params["reducer"] == "half"
    finally:
        REDUCERS.pop("half")
    with pytest.raises(CoverlensError, match="unknown reducer 'half'"):
        build_reducer(ClusterParams(reducer="half"))


def test_merging_keeps_the_count_under_the_cap() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(12, 5)) * 10
    labels = np.repeat(np.arange(12), 20)
    labels[:5] = NOISE
    points = centres[np.repeat(np.arange(12), 20)] + rng.normal(size=(240, 5))
    merged, into = merge_small(points, labels, 5)
    assert len(set(merged.tolist()) - {NOISE}) == 5 and len(into) == 7
    assert (merged == NOISE).sum() == 5  # noise is not merged into anything
    assert all(merged[labels == old].tolist() == [new] * int((labels == old).sum()) for old, new in into.items())
    vectors, _, genres = blobs(per=40, spread=0.15)
    ids = [str(i) for i in range(len(vectors))]
    report = cluster_vectors(vectors, genres, ids, ids, params=ClusterParams(reducer="pca", n_components=8,
                                                                             max_clusters=2)).report
    assert report.found_clusters == 4 and len(report.clusters) == 2
    assert sum(len(c.merged_from) for c in report.clusters) == 2


def test_a_giant_cluster_is_split_into_the_styles_inside_it() -> None:
    rng = np.random.default_rng(5)
    base, far = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 8)))
    styles = base + 0.03 * rng.normal(size=(5, 8))  # five close styles: HDBSCAN sees one blob
    vectors = np.concatenate([s + 0.02 * rng.normal(size=(40, 8)) for s in styles]
                             + [far + 0.02 * rng.normal(size=(30, 8))]).astype(np.float32)
    genres = [f"style{i}" for i in range(5) for _ in range(40)] + ["far"] * 30
    ids = [str(i) for i in range(len(vectors))]
    image = replace(PCA, space="image")  # the image vectors' own structure, no genre part
    whole = cluster_vectors(vectors, genres, ids, ids, params=replace(image, max_cluster_share=None)).report
    split = cluster_vectors(vectors, genres, ids, ids, params=image).report
    assert whole.found_clusters == 2 and not whole.params["split_giant"]
    assert split.params["split_giant"] and split.found_clusters > 2 and split.nmi > whole.nmi
    assert max(c.size for c in split.clusters) <= 0.2 * len(ids)


def test_outlier_reduction_marks_the_covers_it_assigns() -> None:
    vectors, centres, genres = blobs(per=40, dim=8)  # 8-d: the PCA below only rotates, distances stay
    rng = np.random.default_rng(4)
    away = rng.normal(size=(6, 8))
    near = centres[0] + 0.45 * away / np.linalg.norm(away, axis=1, keepdims=True)  # loose, around blob 0
    far = rng.normal(size=(10, 8))  # anywhere on the sphere
    all_vectors = np.concatenate([vectors, near, far]).astype(np.float32)
    all_genres = genres + ["ambient"] * 16
    ids = [f"c{i}" for i in range(len(all_vectors))]
    before = cluster_vectors(all_vectors, all_genres, ids, ids,
                             params=ClusterParams(space="image", reducer="pca", n_components=8, min_cluster_size=15,
                                                  min_samples=10))
    after = cluster_vectors(all_vectors, all_genres, ids, ids,
                            params=ClusterParams(space="image", reducer="pca", n_components=8, min_cluster_size=15,
                                                 min_samples=10, reduce_outliers=True, outlier_reach=3.0))
    assert before.report.reassigned == 0 and before.report.noise_share > 0
    assert after.report.reassigned > 0
    assert after.report.noise_share_before == before.report.noise_share
    assert after.report.noise_share == pytest.approx(before.report.noise_share - after.report.reassigned / len(ids),
                                                     abs=1e-4)
    moved = [i for i, how in enumerate(after.model.assigned) if how == BY_OUTLIERS]
    assert len(moved) == after.report.reassigned and all(before.model.labels[i] == NOISE for i in moved)
    assert all(after.model.labels[i] != NOISE and after.model.probabilities[i] == 0 for i in moved)
    assert sum(c.reassigned for c in after.report.clusters) == after.report.reassigned
    exemplars = {e for c in after.report.clusters for e in c.exemplar_ids}
    assert not exemplars & {ids[i] for i in moved}
    assert {after.model.assigned[i] for i in range(len(ids)) if i not in moved} <= {BY_CLUSTERER, AS_NOISE}


def test_text_spaces_need_text_and_leave_textless_covers_out() -> None:
    vectors, _, genres = blobs(per=30)
    ids = [f"c{i}" for i in range(len(vectors))]
    rng = np.random.default_rng(0)
    texts = {i: f"{PLANTED[g].upper()} {PLANTED[g]}{rng.choice(FILLER)} {rng.choice(FILLER)}"
             for i, g in zip(ids, genres, strict=True)}
    for cover in ids[::10]:
        texts[cover] = ""
    text_only = cluster_vectors(vectors, genres, ids, ids,
                                params=ClusterParams(space="text", reducer="pca", n_components=8),
                                texts=lambda wanted: {i: texts[i] for i in wanted})
    assert text_only.report.no_signal == 12 and text_only.report.space == "text"
    assert [text_only.model.assigned[i] for i in range(0, 120, 10)] == [NO_SIGNAL] * 12
    assert len(text_only.report.clusters) >= 4 and text_only.report.nmi > 0.5
    both = cluster_vectors(vectors, genres, ids, ids, texts=texts,
                           params=ClusterParams(space="image+text", reducer="pca", text_weight=0.5))
    assert both.report.no_signal == 0 and both.report.nmi > 0.9
    with pytest.raises(CoverlensError, match="OCR text"):
        cluster_vectors(vectors, genres, ids, ids, params=ClusterParams(space="text", reducer="pca"))


class ExactNeighbours:
    """Nearest stored covers by exact cosine, like the store's query."""

    def __init__(self, ids: list[str], vectors: np.ndarray) -> None:
        self.ids, self.unit = ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def query(self, vectors: np.ndarray, k: int, *, where=None) -> list[list[Hit]]:
        sims = self.unit @ (vectors[0] / np.linalg.norm(vectors[0]))
        return [[Hit(self.ids[i], float(sims[i]), "", "", "") for i in np.argsort(-sims)[:k]]]


def test_placement_by_neighbours_agrees_with_the_fitted_labels(clustered) -> None:
    result, vectors, centres, _ = clustered
    model = result.model
    neighbours = ExactNeighbours(model.ids, vectors)
    rng = np.random.default_rng(9)
    for centre in centres:  # new covers near each blob land in that blob's cluster
        point = (centre + rng.normal(scale=0.15 / np.sqrt(64), size=64)).astype(np.float32)
        nearest = neighbours.query(point[None], 1)[0][0].id
        cluster, share = place_cover(model, point, neighbours)
        assert cluster == model.label_of(nearest) and 0.5 < share <= 1.0
    agree = [place_cover(model, vectors[i], neighbours)[0] == model.labels[i] for i in range(0, 200, 7)]
    assert all(agree)
    assert knn_vote(model, [Hit("not-clustered", 0.9, "", "", "")]) == (NOISE, 0.0)
    members = model.members(0, limit=5)
    assert len(members) == 5 and all(model.label_of(cover) == 0 for cover, _, _ in members)
    assert [strength for _, strength, _ in members] == sorted((s for _, s, _ in members), reverse=True)


def test_save_and_load_round_trip(clustered, workspace: Workspace) -> None:
    result, vectors, _, _ = clustered
    report, model = result.report, result.model
    assert load_clusters(workspace, "fake") is None
    stale = workspace.root / "clusters" / "fake.pkl"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"old pickled model")
    files = save_clusters(workspace, report, model)
    assert files == ClusterFiles.of(workspace, "fake") and not stale.exists()
    assert files.report == workspace.root / "clusters" / "fake.json"
    assert json.loads(files.report.read_text())["clusters"][0]["words"] == report.clusters[0].words
    with open(files.labels, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200 and list(rows[0]) == ["id", "cluster", "probability", "assigned"]
    assert [int(r["cluster"]) for r in rows] == model.labels.tolist()
    loaded = load_clusters(workspace, "fake")
    assert loaded is not None
    again, model_again = loaded
    assert again == report and model_again.assigned == model.assigned
    neighbours = ExactNeighbours(model.ids, vectors)
    assert place_cover(model_again, vectors[7], neighbours) == place_cover(model, vectors[7], neighbours)


def test_damaged_files_are_reported(clustered, workspace: Workspace) -> None:
    result, *_ = clustered
    files = save_clusters(workspace, result.report, result.model)
    files.labels.write_text("id,cluster\nx,not-a-number\n")
    with pytest.raises(WorkspaceError, match="fake-labels.csv"):
        load_clusters(workspace, "fake")
    files.report.write_text('{"clusters": [{"size": 1}]}')
    with pytest.raises(WorkspaceError, match="fake.json"):
        load_clusters(workspace, "fake")


def test_map_is_a_png(clustered, tmp_path: Path) -> None:
    result, _, _, genres = clustered
    target = cluster_map(result.fitted.reduced, result.model.labels, genres, tmp_path / "reports" / "map.png",
                         title="fake", projection="pca")
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert layout_2d(result.fitted.reduced, projection="pca").shape == (200, 2)
    with pytest.raises(ValueError, match="projection"):
        layout_2d(result.fitted.reduced, projection="mds")


def test_cli_clusters(monkeypatch: pytest.MonkeyPatch, workspace: Workspace,
                      capsys: pytest.CaptureFixture[str]) -> None:
    vectors, _, genres = blobs(per=40)
    metas = [{"path": f"{g}/{i}.jpg", "genre": g, "genres": g, "split": "train", "width": 32, "height": 32}
             for i, g in enumerate(genres)]
    install_fake_store(monkeypatch, FakeStore(FakeCollection([f"c{i}" for i in range(160)], vectors, metas)))
    assert main(["clusters", "--reducer", "pca", "--n-components", "8", "--projection", "pca",
                 "--reduce-outliers", "-w", str(workspace.root)]) == 0
    out = capsys.readouterr().out
    assert "dominant genre" in out and "ARI 1.000" in out and "noise" in out and "pca 8-d" in out
    assert (workspace.reports_dir / "clusters-finetuned.png").read_bytes()[:8] == PNG_MAGIC
    loaded = load_clusters(workspace, "finetuned")
    assert loaded is not None and loaded[0].params["reduce_outliers"] and len(loaded[0].clusters) == 4
    assert loaded[0].space == "image+genre"  # auto, and this workspace has no OCR text
    assert main(["clusters", "--space", "text", "--reducer", "pca", "-w", str(workspace.root)]) == 1
    assert "OCR text" in capsys.readouterr().err
    install_fake_store(monkeypatch, FakeStore())
    assert main(["clusters", "-w", str(workspace.root)]) == 8
    assert "run `coverlens index`" in capsys.readouterr().err


def test_clusters_help_imports_no_umap() -> None:
    code = ("import sys\nfrom coverlens.cli import main\ntry:\n    main(['clusters', '--help'])\n"
            "except SystemExit:\n    pass\nprint(sorted({'umap', 'numba', 'pynndescent', 'hdbscan', 'sklearn'}"
            " & set(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]" and "--space" in done.stdout


def test_selection_epsilon_follows_the_density_of_the_reduced_points() -> None:
    from coverlens.clustering.params import adaptive_epsilon

    rng = np.random.default_rng(0)
    few, many = rng.random((500, 5)), rng.random((8_000, 5))
    assert adaptive_epsilon(many, 2) < 0.6 * adaptive_epsilon(few, 2)  # same layout, denser: smaller
    assert adaptive_epsilon(10 * few, 2) == pytest.approx(10 * adaptive_epsilon(few, 2), rel=1e-3)
    resolved = ClusterParams().resolve(500)
    assert resolved.with_epsilon_for(few).selection_epsilon == adaptive_epsilon(few, resolved.min_samples)
    assert ClusterParams(selection_epsilon=0.3).resolve(500).with_epsilon_for(few).selection_epsilon == 0.3
