"""Tests for coverlens.evaluate: metrics, methods, the runner with fakes, the report files, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverlens.catalog import distinct_covers, library_root, load_catalog, run_catalog
from coverlens.errors import ModelError, WeightsError
from coverlens.evaluate import build_collaborators, run_evaluation
from coverlens.evaluate.methods import align_columns, knn_proba, majority_proba
from coverlens.evaluate.metrics import compute_metrics, top_k_accuracy
from coverlens.evaluate.sources import StoredReferences, select
from coverlens.registry import NO_MODEL, BuildContext, Kept
from coverlens.workspace import Workspace
from fakes import fake_registry
from libraries import catalogued_library

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class GridEmbedder:
    """A fake embedder: the 4x4 colour grid of a cover, centred and L2-normalised (48 dims)."""

    dimension = 48

    def __init__(self, name: str = "finetuned") -> None:
        self.name = name
        self.calls: list[int] = []

    @property
    def identity(self) -> dict[str, str]:
        return {"kind": "fake-grid", "name": self.name}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls.append(len(images))
        grid = np.stack([np.asarray(im.resize((4, 4)), np.float32).ravel() / 255.0 - 0.5 for im in images])
        return (grid / np.linalg.norm(grid, axis=1, keepdims=True)).astype(np.float32)


class ConstantClassifier:
    """A fake classifier that always says `genre`; its classes are in its own (reversed) order."""

    def __init__(self, classes: list[str], genre: str) -> None:
        self.classes = list(reversed(classes))
        self.genre = genre
        self.tta_seen: list[bool] = []

    def predict_proba(self, images: Sequence[Image.Image], tta: bool = False) -> np.ndarray:
        self.tta_seen.append(tta)
        proba = np.full((len(images), len(self.classes)), 0.01)
        proba[:, self.classes.index(self.genre)] = 0.9
        return proba


class BrokenEmbedder(GridEmbedder):
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        raise ModelError("model file changed on disk")


def no_store(embedder: object, ids: Sequence[str]) -> StoredReferences:
    return StoredReferences.nothing("no store in this test")


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """4 genres x 20 generated 48 px covers, catalogued (16 train + 4 test per genre)."""
    return catalogued_library(tmp_path_factory.mktemp("evaluate"), genres=4, per_genre=20, seed=3,
                              workspace_name="workspace")


def fresh_copy(catalogued: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the catalogued workspace (the report files of one test stay its own)."""
    import shutil

    target = tmp_path / "ws"
    shutil.copytree(catalogued.root, target)
    return Workspace(target)


# ---------------------------------------------------------------- metrics


def test_metrics_hand_computed() -> None:
    classes = ["a", "b", "c", "d"]
    y_true = np.array([0, 0, 1, 1, 2, 3])
    proba = np.array([
        [0.7, 0.1, 0.1, 0.1],  # a -> a
        [0.3, 0.5, 0.1, 0.1],  # a -> b (a second: top-3 hit)
        [0.1, 0.6, 0.2, 0.1],  # b -> b
        [0.2, 0.5, 0.2, 0.1],  # b -> b
        [0.4, 0.3, 0.1, 0.2],  # c -> a (c last: top-3 miss)
        [0.1, 0.1, 0.1, 0.7],  # d -> d
    ])
    m = compute_metrics(y_true, proba, classes)
    assert m.n == 6
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.top3 == pytest.approx(5 / 6)
    # a: 1 of 2 predicted right, 1 of 2 found; b: 2 of 3, 2 of 2; c: never; d: 1 of 1
    assert (m.per_genre["a"].precision, m.per_genre["a"].recall, m.per_genre["a"].f1) == pytest.approx((0.5, 0.5, 0.5))
    assert (m.per_genre["b"].precision, m.per_genre["b"].recall, m.per_genre["b"].f1) == pytest.approx((2 / 3, 1, 0.8))
    assert (m.per_genre["c"].precision, m.per_genre["c"].recall, m.per_genre["c"].f1) == (0.0, 0.0, 0.0)
    assert m.per_genre["d"].f1 == 1.0 and m.per_genre["d"].support == 1
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0 + 1.0) / 4)
    assert m.confusion == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]


def test_metrics_agree_with_sklearn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 6, 200)
    proba = rng.random((200, 6))
    m = compute_metrics(y_true, proba, list("abcdef"))
    y_pred = proba.argmax(axis=1)
    assert m.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert m.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(6), zero_division=0)
    assert [m.per_genre[g].f1 for g in "abcdef"] == pytest.approx(list(f))
    assert [m.per_genre[g].support for g in "abcdef"] == list(s)


def test_macro_f1_over_test_genres_only() -> None:
    # genre "c" has no test cover: it is not averaged in, though a wrong prediction still costs "a"
    m = compute_metrics(np.array([0, 1]), np.array([[0.1, 0.1, 0.8], [0.1, 0.8, 0.1]]), ["a", "b", "c"])
    assert set(m.per_genre) == {"a", "b"}
    assert m.macro_f1 == pytest.approx(0.5)


def test_top3_only_with_more_than_three_genres() -> None:
    assert compute_metrics(np.array([0, 1, 2]), np.eye(3), ["a", "b", "c"]).top3 is None
    assert compute_metrics(np.array([0, 1, 2]), np.eye(4)[:3], list("abcd")).top3 == 1.0


def test_top_k_ties_count_in_expectation() -> None:
    # true class 2 scores 0 like two others, behind two positive classes: 1 of 3 tied places left
    assert top_k_accuracy(np.array([2]), np.array([[0.5, 0.5, 0, 0, 0]]), 3) == pytest.approx(1 / 3)
    # everything tied: k of n
    assert top_k_accuracy(np.array([0]), np.full((1, 5), 0.2), 3) == pytest.approx(3 / 5)
    assert top_k_accuracy(np.array([0]), np.array([[0.9, 0.1, 0.0, 0.0]]), 3) == 1.0


def test_metrics_reject_bad_shapes() -> None:
    from coverlens.errors import ArgumentError, WorkspaceError

    with pytest.raises(ArgumentError, match=r"probabilities must be \(2, 2\), got \(3, 2\)"):
        compute_metrics(np.array([0, 1]), np.zeros((3, 2)), ["a", "b"])
    with pytest.raises(ArgumentError, match=r"labels must lie in 0..1"):
        compute_metrics(np.array([0, 5]), np.zeros((2, 2)), ["a", "b"])
    with pytest.raises(WorkspaceError, match="test split is empty"):
        compute_metrics(np.array([], dtype=int), np.zeros((0, 2)), ["a", "b"])


# ---------------------------------------------------------------- methods


def test_majority_baseline() -> None:
    proba = majority_proba(np.array([2, 2, 2, 1, 1, 0, 3]), 5, 4)
    assert proba.shape == (5, 4)
    assert (proba.argmax(axis=1) == 2).all()
    m = compute_metrics(np.array([2, 2, 0, 1, 3]), proba, list("abcd"))
    assert m.accuracy == pytest.approx(2 / 5)
    assert m.top3 == pytest.approx(4 / 5)  # the three most frequent train genres: c, b, then a or d


def test_align_columns_by_name() -> None:
    proba = np.array([[0.1, 0.2, 0.7]])
    aligned = align_columns(proba, ["z", "b", "a"], ["a", "b", "c"])
    assert aligned.tolist() == [[0.7, 0.2, 0.0]]
    with pytest.raises(ValueError):
        align_columns(proba, ["a", "b"], ["a", "b"])


def test_knn_proba_plain_and_weighted() -> None:
    train = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    query = np.array([[0.96, 0.28]], dtype=np.float32)
    plain = knn_proba(query, train, labels, 2, k=3, weighted=False)
    assert plain[0].tolist() == pytest.approx([2 / 3, 1 / 3], abs=1e-6)
    weighted = knn_proba(query, train, labels, 2, k=4, weighted=True)
    sims = train @ query[0]
    assert weighted[0, 0] == pytest.approx((sims[0] + sims[1]) / sims.sum(), abs=1e-6)
    with pytest.raises(ValueError):
        knn_proba(query, np.zeros((0, 2), np.float32), labels[:0], 2, k=3, weighted=True)


def test_select_keeps_wanted_order_and_reports_count() -> None:
    vectors = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    found = select(["x", "y", "z"], vectors, ["z", "q", "x"], "store", 0.1)
    assert found.ids == ["z", "x"]
    assert found.vectors is not None
    np.testing.assert_allclose(found.vectors, [[0, 1], [0.6, 0.8]], atol=1e-6)
    assert "2 of 3" in found.note
    assert select(["x"], vectors[:1], ["q"], "store", 0.0).vectors is None


# ---------------------------------------------------------------- runner


def test_knn_with_fake_embedder_beats_chance(catalogued: Workspace) -> None:
    embedder = GridEmbedder()
    report = run_evaluation(catalogued, embedders={"imagenet": GridEmbedder("imagenet"), "finetuned": embedder},
                            vector_source=no_store, write=False)
    assert report.n_test == 16 and report.n_train == 64 and len(report.classes) == 4
    knn, baseline, chance = (report.result(s) for s in ("knn-finetuned", "knn-imagenet", "majority"))
    assert knn is not None and knn.metrics is not None
    assert baseline is not None and baseline.metrics is not None
    assert chance is not None and chance.metrics is not None
    assert chance.metrics.accuracy == pytest.approx(0.25)  # balanced generated genres
    assert knn.metrics.accuracy >= 0.75 and baseline.metrics.accuracy >= 0.75
    assert knn.metrics.macro_f1 > chance.metrics.macro_f1 + 0.4
    assert knn.seconds is not None and knn.seconds > 0
    assert sum(embedder.calls) == 16 + 64  # each train and test cover embedded once
    assert "k=10, similarity-weighted" in knn.note and "k=5, plain majority" in baseline.note
    assert report.settings["k"] == 10


def test_missing_collaborators_are_skipped_with_reasons(catalogued: Workspace) -> None:
    report = run_evaluation(catalogued, unavailable={"head": "no model file in /x/model; run `coverlens train`",
                                                     "knn-clip": "no OpenCLIP weights offline"},
                            vector_source=no_store, write=False)
    head = report.result("head")
    assert head is not None and head.metrics is None and head.seconds is None
    assert "run `coverlens train`" in head.note
    clip = report.result("knn-clip")
    assert clip is not None and clip.note == "CLIP comparator unavailable: no OpenCLIP weights offline"
    rows = {row["method"]: row for row in report.table_rows()}
    assert rows["fastai head"]["top-1"] == "-" and rows["fastai head"]["note"].startswith("skipped: ")
    majority = report.result("majority")
    assert majority is not None and majority.metrics is not None  # the chance row always runs


def test_head_row_aligns_classes_and_passes_tta(catalogued: Workspace) -> None:
    classes = sorted(distinct_covers(load_catalog(catalogued))["genre"].unique())
    classifier = ConstantClassifier(classes, classes[1])
    report = run_evaluation(catalogued, signals={"head": classifier}, tta=True, vector_source=no_store, write=False)
    head = report.result("head")
    assert head is not None and head.metrics is not None
    assert head.metrics.accuracy == pytest.approx(0.25)  # always the second genre, 4 of 16 covers
    assert all(row[1] == 4 for row in head.metrics.confusion)  # every prediction in column 1
    assert classifier.tta_seen and all(classifier.tta_seen)
    assert head.note == "TTA"


def test_stored_vectors_are_used_and_only_the_rest_embedded(catalogued: Workspace) -> None:
    plain = run_evaluation(catalogued, embedders={"finetuned": GridEmbedder()}, vector_source=no_store, write=False)
    frame = distinct_covers(load_catalog(catalogued))
    train = frame[frame["split"] == "train"]
    half = train.iloc[::2]
    stored_vectors = GridEmbedder().embed([Image.open(library_root(catalogued) / p).convert("RGB")
                                           for p in half["path"]])

    def store(embedder: object, ids: Sequence[str]) -> StoredReferences:
        return select(list(half["id"]), stored_vectors, ids, "fake store", 0.0)

    embedder = GridEmbedder()
    report = run_evaluation(catalogued, embedders={"finetuned": embedder}, vector_source=store, write=False)
    assert sum(embedder.calls) == 16 + (len(train) - len(half))
    knn, before = report.result("knn-finetuned"), plain.result("knn-finetuned")
    assert knn is not None and before is not None and knn.metrics is not None and before.metrics is not None
    assert knn.metrics.confusion == before.metrics.confusion
    assert "32 stored + 32 embedded" in knn.note
    assert any("fake store: 32 of 64" in note for note in report.notes)


def test_failing_embedder_becomes_a_skipped_row(catalogued: Workspace) -> None:
    report = run_evaluation(catalogued, embedders={"finetuned": BrokenEmbedder(), "imagenet": GridEmbedder("i")},
                            vector_source=no_store, write=False)
    broken, baseline = report.result("knn-finetuned"), report.result("knn-imagenet")
    assert broken is not None and broken.metrics is None and "model file changed" in broken.note
    assert baseline is not None and baseline.metrics is not None


def test_unreadable_test_cover_is_left_out(catalogued: Workspace, tmp_path: Path) -> None:
    workspace = fresh_copy(catalogued, tmp_path)
    library = tmp_path / "library"
    import shutil

    shutil.copytree(library_root(catalogued), library)
    run_catalog(workspace, library)
    frame = distinct_covers(load_catalog(workspace))
    victim = frame[frame["split"] == "test"].iloc[0]
    (library / victim["path"]).write_bytes(b"not an image any more")
    report = run_evaluation(workspace, embedders={"imagenet": GridEmbedder()}, vector_source=no_store, write=False)
    assert report.n_test == 15 and report.n_held_out == 16
    assert any("1 test covers could not be opened" in n and victim["path"] in n for n in report.notes)


def test_limit_is_a_seeded_sample(catalogued: Workspace) -> None:
    a = run_evaluation(catalogued, limit=5, seed=1, vector_source=no_store, write=False)
    b = run_evaluation(catalogued, limit=5, seed=1, vector_source=no_store, write=False)
    assert a.n_test == 5 and a.n_held_out == 16
    assert [r.metrics for r in a.results] == [r.metrics for r in b.results]
    c = run_evaluation(catalogued, limit=5, seed=2, vector_source=no_store, write=False)
    assert c.n_test == 5


def test_report_files_written(catalogued: Workspace, tmp_path: Path) -> None:
    workspace = fresh_copy(catalogued, tmp_path)
    classes = sorted(distinct_covers(load_catalog(workspace))["genre"].unique())
    report = run_evaluation(workspace, signals={"head": ConstantClassifier(classes, classes[0])},
                            embedders={"imagenet": GridEmbedder("imagenet"), "finetuned": GridEmbedder()},
                            unavailable={"knn-clip": "no weights"}, vector_source=no_store)
    reports = workspace.reports_dir
    expected = ["evaluation.md", "evaluation.json", "per_genre_f1.png", "confusion_head.png",
                "confusion_knn-imagenet.png", "confusion_knn-finetuned.png", "confusion_majority.png"]
    for name in expected:
        assert (reports / name).is_file(), name
    for name in expected[2:]:
        with Image.open(reports / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
        assert (reports / name).read_bytes()[:8] == PNG_SIGNATURE
    assert not (reports / "confusion_knn-clip.png").exists()
    assert not list(reports.glob(".*.tmp"))  # atomic writes leave no temporaries
    data = json.loads((reports / "evaluation.json").read_text())
    assert [r["name"] for r in data["results"]] == [
        "fastai head", "text model (OCR words)", "fused: head + text model", "KNN k=5, ImageNet features (baseline)",
        "KNN vote, fine-tuned embeddings", "KNN vote, CLIP embeddings", "majority class (chance)"]
    assert data["results"][1]["metrics"] is None and data["results"][2]["metrics"] is None  # no text model
    assert data["results"][5]["metrics"] is None
    assert data["results"][6]["metrics"]["accuracy"] == pytest.approx(0.25)
    markdown = (reports / "evaluation.md").read_text()
    assert "| majority class (chance) | 0.250 |" in markdown
    assert "skipped: CLIP comparator unavailable: no weights" in markdown
    assert "![per-genre F1](per_genre_f1.png)" in markdown
    assert report.files["markdown"] == str(reports / "evaluation.md")


# ---------------------------------------------------------------- factory and CLI


def test_factory_turns_missing_parts_into_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_weights(ctx: BuildContext) -> GridEmbedder:
        raise WeightsError("ImageNet mobilenet_v2 weights not found")

    def no_clip(ctx: BuildContext) -> GridEmbedder:
        raise WeightsError("CLIP comparator unavailable: no OpenCLIP weights can be had offline")

    def changed_model() -> None:
        raise ModelError("model file changed on disk; re-run `coverlens train`")

    registry = fake_registry({"imagenet": no_weights, "clip": no_clip})
    workspace = Workspace(tmp_path)
    kept = Kept(registry, BuildContext(workspace, lambda: pytest.fail("no model file: nothing to load")))
    found = build_collaborators(workspace, registry=registry, kept=kept)  # said without loading the classifier
    assert found.signals == {} and found.embedders == {}
    assert found.unavailable["head"] == NO_MODEL == found.unavailable["knn-finetuned"]
    assert "weights not found" in found.unavailable["knn-imagenet"]
    assert found.unavailable["knn-clip"] == "CLIP comparator unavailable: no OpenCLIP weights can be had offline"

    workspace.model_dir.mkdir(parents=True)
    (workspace.model_dir / "model.json").write_text("{}")
    kept = Kept(registry, BuildContext(workspace, changed_model))
    found = build_collaborators(workspace, skip={"imagenet": "not requested", "clip": "--no-clip given"},
                                registry=registry, kept=kept)
    assert "model file changed on disk" in found.unavailable["head"]
    assert "model file changed on disk" in found.unavailable["knn-finetuned"]
    assert found.unavailable["knn-clip"] == "--no-clip given"


def test_cli_evaluate_prints_table_and_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                              catalogued: Workspace, tmp_path: Path) -> None:
    from coverlens.cli import common, main
    from coverlens.service import CoverlensService

    workspace = fresh_copy(catalogued, tmp_path)
    built: list[str] = []

    def clip(ctx: BuildContext) -> GridEmbedder:
        built.append("clip")
        return GridEmbedder("clip")

    registry = fake_registry({"imagenet": lambda ctx: GridEmbedder("imagenet"), "clip": clip})
    monkeypatch.setattr(common, "SERVICE_FACTORY", lambda ws, **kw: CoverlensService(ws, registry=registry, **kw))
    code = main(["evaluate", "-w", str(workspace.root), "--no-clip", "--limit", "8", "--k", "3"])
    out = capsys.readouterr().out
    assert code == 0 and built == []  # --no-clip: never built
    assert "held-out covers: 8 (sample of 16)" in out
    assert "KNN k=5, ImageNet features (baseline)" in out and "skipped: no fine-tuned model" in out
    assert "skipped: CLIP comparator unavailable: --no-clip given" in out
    assert f"report: {workspace.reports_dir / 'evaluation.md'}" in out
    assert main(["evaluate", "-w", str(tmp_path / "empty")]) == 5  # no catalog: a WorkspaceError


def test_evaluate_help_does_not_import_torch() -> None:
    code = ("import sys\nfrom coverlens.cli import main\ntry:\n    main(['evaluate', '--help'])\n"
            "except SystemExit:\n    pass\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "--no-clip" in done.stdout and "--limit" in done.stdout
    assert done.stdout.strip().endswith("NO-TORCH")


def test_reads_train_vectors_from_the_chroma_store(catalogued: Workspace, tmp_path: Path) -> None:
    from coverlens.store import CoverStore

    workspace = fresh_copy(catalogued, tmp_path)
    frame = distinct_covers(load_catalog(workspace))
    half = frame[frame["split"] == "train"].iloc[::2]
    images = [Image.open(library_root(workspace) / p).convert("RGB") for p in half["path"]]
    with CoverStore.open(workspace, writer=True) as store:
        collection = store.collection_for("finetuned", GridEmbedder().identity, create=True)
        collection.upsert(list(half["id"]), GridEmbedder().embed(images),
                          [{"path": p, "genre": g, "split": "train"} for p, g in zip(half["path"], half["genre"],
                                                                                    strict=True)])
    embedder = GridEmbedder()
    report = run_evaluation(workspace, embedders={"finetuned": embedder}, write=False)
    knn = report.result("knn-finetuned")
    assert knn is not None and "32 stored + 32 embedded" in knn.note
    assert sum(embedder.calls) == 16 + 32

    class OtherModel(GridEmbedder):
        @property
        def identity(self) -> dict[str, str]:
            return {"kind": "another model"}

    other = OtherModel()
    report = run_evaluation(workspace, embedders={"finetuned": other}, write=False)
    assert sum(other.calls) == 16 + 64  # the stored vectors belong to another model: all embedded
    assert any("store not used" in note and "coverlens index --rebuild" in note for note in report.notes)


@pytest.mark.slow  # imports torch and fastai: tens of seconds on a busy 2-core machine
def test_real_random_init_backbone_embedder_runs_the_baseline_row(catalogued: Workspace) -> None:
    """The real `ImagenetBackboneEmbedder` code path (random-init body, 32 px: no weights needed)."""
    from coverlens.embedders.backbone import ImagenetBackboneEmbedder

    embedder = ImagenetBackboneEmbedder(arch="mobilenet_v2", image_size=32, pretrained=False, device="cpu")
    report = run_evaluation(catalogued, embedders={"imagenet": embedder}, vector_source=no_store, write=False)
    baseline = report.result("knn-imagenet")
    assert baseline is not None and baseline.metrics is not None and baseline.metrics.n == 16
    assert "64 embedded" in baseline.note and baseline.seconds is not None
