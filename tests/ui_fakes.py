"""A fake CoverlensService for the app tests: real files (generated covers, report PNGs), canned records.

It satisfies `coverlens.service_api.CoverlensAPI`, as the real service does (test_registry checks
both), answers with the same records, and can stand in two states: `ready` (catalogued, trained,
indexed, clustered, evaluated) and empty (nothing yet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from coverlens.catalog import CatalogSummary
from coverlens.classifier import TrainConfig, TrainResult
from coverlens.classifier.predict import Prediction
from coverlens.clustering.jobs import ClusterJob
from coverlens.clustering.report import ClusterReport, ClusterSummary
from coverlens.defaults import (
    BATCH_SIZE,
    CLUSTER_MEMBERS,
    DUPLICATE_THRESHOLD,
    PREDICT_TOP_K,
    SEARCH_K,
    SUGGEST_MIN_CONFIDENCE,
    SUSPECT_MIN_SHARE,
    VOTE_K,
)
from coverlens.errors import ModelError, StoreError, WorkspaceError
from coverlens.evaluate import EvaluationReport
from coverlens.images import MAX_UPLOAD_BYTES, open_image
from coverlens.indexer import IndexReport
from coverlens.inspect_report import CopyGroup, LibraryOverview
from coverlens.records import GenreScore, Hit, Vote
from coverlens.sample_library import make_sample_library
from coverlens.search.jobs import SuspectsReport
from coverlens.search.suspects import LabelSuspect, NearDuplicatePair
from coverlens.service_api import (
    ClusterPlacement,
    EmbedderState,
    EngineStatus,
    IndexJob,
    InspectJob,
    PredictionJob,
    SearchResult,
    SimilarCover,
    Source,
    TextEvidence,
    TextMatch,
)
from coverlens.suggest import SUSPECT, UNLABELLED, CoverFacts, Suggestion
from coverlens.suggest_job import SuggestReport, read_suggestions, write_suggestions
from coverlens.text.workspace_training import TextTraining
from coverlens.workspace import Workspace

NEXT_STEP_EMPTY = "Catalog a library: type its folder in the Library tab and press Catalog."
HEAD_GENRE, VOTE_GENRE = "hiphop", "country"  # the fake's head and vote disagree on purpose
FAKE_NOTE = "fake note: the query is not in the library"
FAKE_WORDS = ("GREATEST HITS", "THE FAKES")  # the words the fake "reads" on every cover
EMBEDDERS = ["finetuned", "clip"]
METHOD_NAMES = ("fastai head", "KNN on fine-tuned embeddings", "KNN on CLIP embeddings", "majority baseline")
CLIP_NOTE = "no OpenCLIP weights found (fake)"


def _picture(target: Path, text: str, colour: tuple[int, int, int]) -> Path:
    """A small labelled PNG standing in for a report plot."""
    target.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (160, 120), colour)
    ImageDraw.Draw(image).text((8, 8), text, fill=(255, 255, 255))
    image.save(target)
    return target


class FakeService:
    """Canned answers over a generated library; `calls` records what the app asked for."""

    def __init__(self, root: Path, *, ready: bool = True) -> None:
        self.ready = ready
        self.workspace = Workspace(root / "workspace")
        self.workspace.root.mkdir(parents=True, exist_ok=True)
        self.library = root / "library"
        self.calls: list[tuple[str, Any]] = []
        self.catalogued: Path | None = None  # a library catalogued through the app
        self.last_source: Path | bytes | None = None  # what the last search was asked about
        self.covers: list[tuple[str, str]] = []
        if ready:
            make_sample_library(self.library, genres=3, per_genre=6, size=48, seed=3)
            self.covers = sorted((p.relative_to(self.library).as_posix(), p.parent.name)
                                 for p in self.library.rglob("*.jpg"))
            self._reports()

    # --- state ---------------------------------------------------------------------------

    def embedder_choices(self) -> list[str]:
        return list(EMBEDDERS)

    def close(self) -> None:
        self.calls.append(("close", None))

    def command_options(self, *, store: bool = True) -> list[str] | None:
        return None  # canned answers: no other process could rebuild them, so jobs run in threads

    def load_store(self) -> bool:
        self.calls.append(("load_store", None))
        return False

    def library_root(self) -> Path | None:
        return self.library if self.ready else self.catalogued

    def status(self) -> EngineStatus:
        embedders = {"finetuned": EmbedderState("fine-tuned backbone", self.ready, "" if self.ready else "no model"),
                     "clip": EmbedderState("OpenCLIP comparator", False, CLIP_NOTE)}
        if not self.ready:
            return EngineStatus(self.workspace.root, None, 0, False, "no model yet", {}, embedders,
                                False, False, NEXT_STEP_EMPTY)
        return EngineStatus(self.workspace.root, self.library, len(self.covers), True, "mobilenet_v2, 3 genres",
                            {"finetuned": len(self.covers)}, embedders, True, True, "All set: search a cover.")

    def _require(self) -> None:
        if not self.ready:
            raise WorkspaceError(f"no catalog in workspace {self.workspace.root}; "
                                 "run `coverlens catalog LIBRARY` first")

    def _hit(self, index: int, similarity: float) -> Hit:
        path, genre = self.covers[index % len(self.covers)]
        return Hit(f"id{index:04d}", similarity, path, genre, "train")

    # --- search --------------------------------------------------------------------------

    def cover_path(self, relpath: str) -> Path:
        self._require()
        return self.library / relpath

    def cover_image(self, relpath: str, source: str = "file") -> Path | Image.Image:
        path = self.cover_path(relpath)
        return path if source == "file" else Image.open(path).convert("RGB")  # the fake embeds nothing

    def library_cover(self, relpath: str) -> Source:
        return self.cover_path(relpath)

    def library_covers(self, limit: int = 200) -> list[tuple[str, str]]:
        self._require()
        return self.covers[:limit]

    def search(self, source: Source, *, k: int = SEARCH_K, offset: int = 0, embedder: str | None = None,
               vote_k: int = VOTE_K, text: bool = True) -> SearchResult:
        self.calls.append(("search", {"k": k, "offset": offset, "embedder": embedder}))
        self.last_source = source
        open_image(source, max_bytes=MAX_UPLOAD_BYTES)  # the real checks: ImageError for non-images
        self._require()
        hits = [self._hit(offset + i, 0.95 - 0.01 * i) for i in range(k)]
        vote = Vote(VOTE_GENRE, [GenreScore(VOTE_GENRE, 0.6), GenreScore(HEAD_GENRE, 0.4)], hits[:3])
        head = [GenreScore(HEAD_GENRE, 0.7), GenreScore(VOTE_GENRE, 0.2), GenreScore("ambient", 0.1)]
        return SearchResult(None, head, vote, hits, ClusterPlacement(1, VOTE_GENRE, 0.81), False, [FAKE_NOTE],
                            self._evidence() if text else None)

    # --- the words on the covers ---------------------------------------------------------

    def _evidence(self) -> TextEvidence:
        return TextEvidence(list(FAKE_WORDS), "stored", [GenreScore(VOTE_GENRE, 0.8)],
                            [GenreScore(VOTE_GENRE, 0.6), GenreScore(HEAD_GENRE, 0.4)], {"head": 1.0, "text": 1.0})

    def read_words(self, source: Source) -> TextEvidence:
        self.calls.append(("read_words", None))
        open_image(source, max_bytes=MAX_UPLOAD_BYTES)
        return self._evidence()

    def find(self, query: str, *, k: int = SEARCH_K, offset: int = 0) -> list[TextMatch]:
        self.calls.append(("find", {"query": query, "k": k, "offset": offset}))
        self._require()
        hits = [self._hit(offset + i, 0.0) for i in range(k)]
        return [TextMatch(h.id, 10.0 - i, h.path, h.genre, f"{query.upper()}\nFAKE", f"[{query.upper()}] / FAKE",
                          True, self.library / h.path) for i, h in enumerate(hits)]

    def train_text(self, progress: Callable[[float, str], None] | None = None) -> TextTraining:
        return TextTraining(skipped="the fake service does not train")

    def store_warnings(self, embedder: str | None = None) -> list[str]:
        self.calls.append(("store_warnings", embedder))
        return []

    def similar(self, source: Source, *, k: int = SEARCH_K, offset: int = 0,
                embedder: str | None = None) -> list[SimilarCover]:
        self._require()
        return [SimilarCover(h, self.library / h.path) for h in (self._hit(offset + i, 0.9) for i in range(k))]

    # --- the model -----------------------------------------------------------------------

    def train(self, config: TrainConfig, *, progress: bool = True) -> TrainResult:
        raise ModelError("the fake service does not train")

    def predict(self, paths: Sequence[Path], *, k: int = PREDICT_TOP_K, tta: bool = False,
                vote_k: int = VOTE_K) -> list[PredictionJob]:
        head = [GenreScore(HEAD_GENRE, 0.7), GenreScore(VOTE_GENRE, 0.2), GenreScore("ambient", 0.1)][:k]
        return [PredictionJob(Prediction(str(p), head), None) for p in paths]

    # --- library -------------------------------------------------------------------------

    def overview(self) -> LibraryOverview:
        self._require()
        a, b = self.covers[0][0], self.covers[-1][0]
        return LibraryOverview(
            files=len(self.covers) + 1, distinct=len(self.covers), unreadable=1,
            genres={"ambient": {"files": 7, "distinct": 6, "unreadable": 1, "train": 5, "test": 1},
                    "country": {"files": 6, "distinct": 6, "unreadable": 0, "train": 5, "test": 1},
                    "hiphop": {"files": 6, "distinct": 6, "unreadable": 0, "train": 5, "test": 1}},
            sizes={"width_min": 48, "width_median": 48.0, "width_max": 48, "height_min": 48, "height_median": 48.0,
                   "height_max": 48, "common": {"48x48": len(self.covers)}},
            formats={"JPEG": len(self.covers)}, modes={"RGB": len(self.covers)},
            problems=[{"path": "ambient/broken.png", "genre": "ambient", "reason": "not an image (fake)"}],
            duplicate_groups=[CopyGroup("dup0123456789abcdef", 2, ["ambient", "hiphop"], [a, b])],
            label_conflicts=[CopyGroup("dup0123456789abcdef", 2, ["ambient", "hiphop"], [a, b])],
            unlabelled={"files": 2, "distinct": 2, "unreadable": 0}, source="music",
        )

    def inspect(self, placeholder_min: int | None = None) -> InspectJob:
        return InspectJob(self.overview(), _picture(self.workspace.reports_dir / "inspect.png", "inspect", (9, 9, 9)))

    def catalog(self, library: Path | None, progress: Callable[[float, str], None] | None = None,
                **options: Any) -> CatalogSummary:
        self.calls.append(("catalog", library))
        if not self.ready:
            self.catalogued = library
        if progress:
            progress(0.5, "reading covers")
            progress(1.0, "done")
        return CatalogSummary(len(self.covers), len(self.covers), 0, len(self.covers), 0, 0, 0, 3)

    def index(self, progress: Callable[[float, str], None] | None = None, *, embedder: str = "all",
              rebuild: bool = False, batch_size: int = 64, readers: int | None = None,
              ray: str | None = None, text: bool | None = None) -> IndexJob:
        self._require()
        self.calls.append(("index", None))
        return IndexJob(IndexReport(len(self.covers), []), "fake store",
                        [f"indexed {len(self.covers)} covers with finetuned (fake)"])

    # --- clusters ------------------------------------------------------------------------

    def _cluster_report(self, embedder: str) -> ClusterReport:
        groups = {}
        for path, genre in self.covers:
            groups.setdefault(genre, []).append(path)
        clusters = [ClusterSummary(i, len(paths), genre, 0.9 - 0.1 * i, {genre: len(paths) - 1, "stray": 1},
                                   [f"x{i}"], paths[:2], words=[f"{genre}word", "live"])
                    for i, (genre, paths) in enumerate(sorted(groups.items()))]
        return ClusterReport(embedder, len(self.covers), clusters, 0.1, 0.42, 0.55, {"min_cluster_size": 3}, 0.2)

    def clusters(self, embedder: str | None = None) -> ClusterReport | None:
        return self._cluster_report(embedder or EMBEDDERS[0]) if self.ready else None

    def run_clusters(self, embedder: str | None = None, *, allow_incomplete: bool = False,
                     **params: Any) -> ClusterJob:
        if not self.ready:
            raise StoreError("nothing indexed yet for finetuned; run `coverlens index` first")
        reports = self.workspace.reports_dir
        return ClusterJob(self._cluster_report(embedder or EMBEDDERS[0]), reports / "cluster_map.png",
                          reports / "clusters.json", reports / "clusters.csv")

    def cluster_map_path(self, embedder: str | None = None) -> Path | None:
        return self.workspace.reports_dir / "cluster_map.png" if self.ready else None

    def cluster_members(self, cluster_id: int, embedder: str | None = None,
                        limit: int = CLUSTER_MEMBERS) -> list[Hit]:
        self._require()
        genre = sorted({g for _, g in self.covers})[cluster_id]
        return [Hit(f"m{i}", 0.9, p, g, "train") for i, (p, g) in enumerate(self.covers) if g == genre][:limit]

    # --- evaluation ----------------------------------------------------------------------

    def _reports(self) -> None:
        reports = self.workspace.reports_dir
        _picture(reports / "cluster_map.png", "cluster map", (40, 90, 160))
        _picture(reports / "per_genre_f1.png", "per-genre F1", (160, 90, 40))
        _picture(reports / "confusion_head.png", "confusion head", (40, 140, 60))
        _picture(reports / "confusion_knn_finetuned.png", "confusion knn", (120, 40, 120))
        rows = "\n".join(f"| {name} | 0.{90 - i} | - | 0.{80 - i} | 4 | 0.1 | |" for i, name in enumerate(METHOD_NAMES))
        (reports / "evaluation.md").write_text(
            "# Genre evaluation on the held-out split\n\n"
            "| method | top-1 | top-3 | macro-F1 | covers | seconds | note |\n|---|---|---|---|---|---|---|\n"
            f"{rows}\n\n![per-genre F1](per_genre_f1.png)\n", encoding="utf-8")

    def evaluation(self) -> dict[str, Any] | None:
        if not self.ready:
            return None
        return {"n_test": 4, "classes": sorted({g for _, g in self.covers}),
                "results": [{"slug": f"m{i}", "name": n} for i, n in enumerate(METHOD_NAMES)]}

    def evaluation_files(self) -> dict[str, Any]:
        reports = self.workspace.reports_dir
        return {"table_md": reports / "evaluation.md", "per_genre_f1": reports / "per_genre_f1.png",
                "confusion": [reports / "confusion_head.png", reports / "confusion_knn_finetuned.png"]}

    def run_evaluation(self, progress: Callable[[float, str], None] | None = None, *,
                       skip: Mapping[str, str] | None = None, **options: Any) -> EvaluationReport:
        if not self.ready:
            raise WorkspaceError("evaluation needs a catalog; run `coverlens catalog LIBRARY` first")
        return EvaluationReport(str(self.workspace.root), sorted({g for _, g in self.covers}), 4, 4,
                                len(self.covers), {}, [], files={"markdown": str(self.evaluation_files()["table_md"])})

    # --- suggestions ---------------------------------------------------------------------

    def suggest(self, progress: Callable[[float, str], None] | None = None, *, embedder: str | None = None,
                k: int = VOTE_K, min_confidence: float = SUGGEST_MIN_CONFIDENCE,
                batch_size: int = BATCH_SIZE) -> SuggestReport:
        """Two canned suggestions (an unlabelled cover, a suspect), written by the real writer."""
        self._require()
        self.calls.append(("suggest", {"embedder": embedder, "k": k, "min_confidence": min_confidence}))
        (a, _), (b, gb) = self.covers[0], self.covers[-1]
        evidence = [self._hit(i, 0.9) for i in (7, 8)]
        found = [Suggestion(UNLABELLED, CoverFacts("u0", a, "file", ""), VOTE_GENRE, 0.8, ["head", "vote"],
                            {"head": [(VOTE_GENRE, 0.7), (HEAD_GENRE, 0.2)]}, 0.9, VOTE_GENRE, evidence),
                 Suggestion(SUSPECT, CoverFacts("s0", b, "file", gb, gb), HEAD_GENRE, 0.75, ["head", "vote"],
                            {"head": [(HEAD_GENRE, 0.8)]}, 0.7, HEAD_GENRE, evidence)]
        report = SuggestReport(found, sorted({g for _, g in self.covers}), ["head"], 1, ["fake suggestions"],
                               {"embedder": embedder, "k": k, "min_confidence": min_confidence})
        return write_suggestions(report, self.workspace.reports_dir)

    def suggestions(self) -> dict[str, Any] | None:
        return read_suggestions(self.workspace.reports_dir)

    # --- suspects ------------------------------------------------------------------------

    def suspects(self, embedder: str | None = None, *, k: int = VOTE_K, min_share: float = SUSPECT_MIN_SHARE,
                 threshold: float = DUPLICATE_THRESHOLD) -> SuspectsReport:
        self._require()
        (a, ga), (b, gb) = self.covers[0], self.covers[-1]
        evidence = [self._hit(i, 0.9) for i in (7, 8, 9)]
        return SuspectsReport(
            [LabelSuspect("s0", a, ga, gb, 0.75, evidence), LabelSuspect("s1", b, gb, ga, 0.6, evidence[:2])],
            [NearDuplicatePair("s0", a, ga, "s1", b, gb, 0.991)],
        )
