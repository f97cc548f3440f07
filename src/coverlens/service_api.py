"""What the edges may ask of the engine: `CoverlensAPI`, the records it answers with, progress.

`coverlens.service.CoverlensService` is the real implementation; the app's tests drive a fake
(`tests/ui_fakes.FakeService`). Both satisfy this Protocol, checked by a test, so they cannot drift.
Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

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
from coverlens.records import GenreScore, Hit, Vote

if TYPE_CHECKING:
    from PIL import Image

    from coverlens.catalog import CatalogSummary
    from coverlens.classifier import Prediction, TrainConfig, TrainResult
    from coverlens.clustering.jobs import ClusterJob
    from coverlens.clustering.report import ClusterReport
    from coverlens.evaluate import EvaluationReport
    from coverlens.indexer import IndexReport
    from coverlens.inspect_report import LibraryOverview
    from coverlens.search.jobs import SuspectsReport
    from coverlens.suggest_job import SuggestReport
    from coverlens.text.workspace_training import TextTraining
    from coverlens.workspace import Workspace

T = TypeVar("T")
ProgressCallback = Callable[[float, str], None]
Source = Path | str | bytes


@dataclass(frozen=True)
class ClusterPlacement:
    cluster_id: int  # -1: the cover fits no cluster
    dominant_genre: str
    strength: float


@dataclass
class TextEvidence:
    """The words read on a cover and what the text model and the fused prediction make of them."""

    words: list[str]  # the lines read (the evidence), top to bottom
    origin: str  # "stored" (the text stage read this library cover), "read" (OCR now), "" (nothing)
    scores: list[GenreScore] = field(default_factory=list)  # the text model's; none: no legible text or model
    fused: list[GenreScore] = field(default_factory=list)  # head + text model; the head's own where nothing read
    weights: dict[str, float] = field(default_factory=dict)  # the fusion weights used
    notes: list[str] = field(default_factory=list)  # why a part is missing

    @property
    def text(self) -> str:
        """The lines read, joined (what the app's Words row shows)."""
        return " / ".join(self.words)

    def to_dict(self) -> dict[str, Any]:
        def scores(found: list[GenreScore]) -> list[dict[str, Any]] | None:
            return None if not found else [{"genre": s.genre, "probability": s.score} for s in found]

        return {"words": list(self.words), "words_from": self.origin or None, "text_model": scores(self.scores),
                "fused": scores(self.fused), "fusion_weights": dict(self.weights), "text_notes": list(self.notes)}


@dataclass
class TextMatch:
    """A cover found by the words on it: BM25 score (higher is better), its file, the matched text."""

    id: str
    score: float
    path: str  # relative to the library root
    genre: str
    text: str  # everything read on the cover
    snippet: str  # the part that matched, matched runs in [brackets]
    exact: bool  # the whole query matched as a phrase (else: a loose, trigram match)
    file: Path | None = None
    matched_in: str = "words"  # "words" (printed on the cover), "metadata" (album/artist, title/author), or both
    metadata: str = ""  # the cover's metadata text (the library's tags), "" when it has none
    metadata_snippet: str = ""  # the part of it that matched, in [brackets]; "" when it did not match
    source: str = "file"  # the picture inside `file` when embedded in an audio file (see sources.read_cover)

    def shown(self) -> str:
        """What matched, for people: the printed words' snippet, and "metadata: ..." where the tags matched."""
        parts = [self.snippet] if "words" in self.matched_in.split("+") else []
        if self.metadata_snippet:
            parts.append(f"metadata: {self.metadata_snippet}")
        return " · ".join(parts) or self.snippet


@dataclass
class SearchResult:
    query_id: str | None
    head: list[GenreScore]
    vote: Vote | None
    neighbours: list[Hit]
    cluster: ClusterPlacement | None
    agree: bool | None
    notes: list[str] = field(default_factory=list)
    text: TextEvidence | None = None  # the words read and the text/fused genres (None: not asked)


@dataclass(frozen=True)
class EmbedderState:
    label: str
    available: bool | None  # None: not known until first used (loading may ask the network)
    note: str = ""


@dataclass
class EngineStatus:
    workspace: Path
    library_root: Path | None
    catalogued: int
    has_model: bool
    model_note: str
    indexed: dict[str, int]
    embedders: dict[str, EmbedderState]  # every offered embedder, by name
    has_clusters: bool
    has_evaluation: bool
    next_step: str
    store_changed: str | None = None  # when an index run last changed the store (ISO 8601), None: never


@dataclass
class IndexJob:
    """What an index run did: per-collection counts and stage times, what was left out, where."""

    report: IndexReport
    location: str  # the store written (a folder or a server URL)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return "\n".join([*self.notes, *self.report.summary_lines()])


@dataclass
class SimilarCover:
    hit: Hit
    path: Path  # the cover's file


@dataclass
class PredictionJob:
    prediction: Prediction
    vote: Vote | None  # None: the covers are not indexed yet (or the file could not be read)
    notes: list[str] = field(default_factory=list)  # why there is no vote, or that the store is incomplete
    text: TextEvidence | None = None  # the words read, the text model and the fused prediction


@dataclass
class InspectJob:
    overview: LibraryOverview
    report: Path


def iterate_with(callback: ProgressCallback | None, label: str) -> Callable[[Iterable[T], int], Iterable[T]] | None:
    """Adapt a `callback(fraction, label)` to the `progress(iterable, total)` form the core takes.

    A callback with a `track(label)` method (the CLI's progress bars) supplies its own wrapper.
    """
    if callback is None:
        return None
    track = getattr(callback, "track", None)
    if track is not None:
        return track(label)
    return counting(callback, label)


def counting(callback: ProgressCallback, label: str) -> Callable[[Iterable[T], int], Iterator[T]]:
    """A `progress(iterable, total)` that calls `callback(fraction, "label: done/total")` per item."""

    def wrap(items: Iterable[T], total: int) -> Iterator[T]:
        for done, item in enumerate(items, start=1):
            callback(done / max(total, 1), f"{label}: {done:,}/{total:,}")
            yield item

    return wrap


@runtime_checkable
class CoverlensAPI(Protocol):
    """The engine as the CLI and the app see it. Embedder names come from `embedder_choices()`;
    None means the default (the first choice)."""

    workspace: Workspace

    def embedder_choices(self) -> list[str]: ...
    def status(self) -> EngineStatus: ...
    def close(self) -> None: ...
    def command_options(self, *, store: bool = True) -> list[str] | None: ...  # jobs as `coverlens` processes
    def load_store(self) -> bool: ...  # follow another process's writes now, not in the next search

    # the library
    def library_root(self) -> Path | None: ...
    def cover_path(self, relpath: str) -> Path: ...
    def cover_image(self, relpath: str, source: str = "file") -> Path | Image.Image: ...
    def library_cover(self, relpath: str) -> Source: ...
    def library_covers(self, limit: int = 200) -> list[tuple[str, str]]: ...
    def catalog(self, library: Path | None, progress: ProgressCallback | None = None,
                **options: Any) -> CatalogSummary: ...
    def overview(self) -> LibraryOverview: ...
    def inspect(self, placeholder_min: int | None = None) -> InspectJob: ...

    # the model
    def train(self, config: TrainConfig, *, progress: bool = True) -> TrainResult: ...
    def predict(self, paths: Sequence[Path], *, k: int = PREDICT_TOP_K, tta: bool = False,
                vote_k: int = VOTE_K) -> list[PredictionJob]: ...

    # search
    def search(self, source: Source, *, k: int = SEARCH_K, offset: int = 0, embedder: str | None = None,
               vote_k: int = VOTE_K, text: bool = True) -> SearchResult: ...
    def store_warnings(self, embedder: str | None = None) -> list[str]: ...
    def similar(self, source: Source, *, k: int = SEARCH_K, offset: int = 0,
                embedder: str | None = None) -> list[SimilarCover]: ...

    # the words on the covers
    def read_words(self, source: Source) -> TextEvidence: ...
    def find(self, query: str, *, k: int = SEARCH_K, offset: int = 0) -> list[TextMatch]: ...
    def train_text(self, progress: ProgressCallback | None = None) -> TextTraining: ...

    # jobs
    def index(self, progress: ProgressCallback | None = None, *, embedder: str = "all", rebuild: bool = False,
              batch_size: int = BATCH_SIZE, readers: int | None = None, ray: str | None = None,
              text: bool | None = None) -> IndexJob: ...
    def clusters(self, embedder: str | None = None) -> ClusterReport | None: ...
    def cluster_map_path(self, embedder: str | None = None) -> Path | None: ...
    def run_clusters(self, embedder: str | None = None, *, allow_incomplete: bool = False,
                     **params: Any) -> ClusterJob: ...
    def cluster_members(self, cluster_id: int, embedder: str | None = None,
                        limit: int = CLUSTER_MEMBERS) -> list[Hit]: ...
    def suspects(self, embedder: str | None = None, *, k: int = VOTE_K, min_share: float = SUSPECT_MIN_SHARE,
                 threshold: float = DUPLICATE_THRESHOLD) -> SuspectsReport: ...
    def evaluation(self) -> dict[str, Any] | None: ...
    def evaluation_files(self) -> dict[str, Any]: ...
    def run_evaluation(self, progress: ProgressCallback | None = None, *, skip: Mapping[str, str] | None = None,
                       **options: Any) -> EvaluationReport: ...
    def suggest(self, progress: ProgressCallback | None = None, *, embedder: str | None = None, k: int = VOTE_K,
                min_confidence: float = SUGGEST_MIN_CONFIDENCE, batch_size: int = BATCH_SIZE) -> SuggestReport: ...
    def suggestions(self) -> dict[str, Any] | None: ...
