"""The service: one object that wires a workspace to the catalog, classifier, embedders and store.

The CLI and the Gradio app call this and nothing else of the core's wiring. Collaborators that
cost time to build (the fastai model, the CLIP model, the Chroma client) are built on first use
and kept; the classifier is reloaded when the model file on disk changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from coverlens.embedders.factory import (
    CLIP,
    EMBEDDER_NAMES,
    FINETUNED,
    NO_MODEL,
    clip_embedder,
    finetuned_embedder,
    has_model,
)
from coverlens.errors import CoverlensError, ImageError, StoreError, WorkspaceError
from coverlens.images import MAX_UPLOAD_BYTES, decode_image, read_image_bytes
from coverlens.records import GenreScore, Hit, Vote
from coverlens.workspace import Workspace, read_json

if TYPE_CHECKING:
    from coverlens.catalog import CatalogSummary
    from coverlens.embedders import Embedder
    from coverlens.inspect_report import LibraryOverview
    from coverlens.search.clusters import ClusterReport
    from coverlens.search.jobs import SuspectsReport
    from coverlens.store import CoverCollection, CoverStore

T = TypeVar("T")
ProgressCallback = Callable[[float, str], None]
VOTE_K = 10


@dataclass(frozen=True)
class ClusterPlacement:
    cluster_id: int  # -1: the cover fits no cluster
    dominant_genre: str
    strength: float


@dataclass
class SearchResult:
    query_id: str | None
    head: list[GenreScore]
    vote: Vote | None
    neighbours: list[Hit]
    cluster: ClusterPlacement | None
    agree: bool | None
    notes: list[str] = field(default_factory=list)


@dataclass
class EngineStatus:
    workspace: Path
    library_root: Path | None
    catalogued: int
    has_model: bool
    model_note: str
    indexed: dict[str, int]
    clip_available: bool
    clip_note: str
    has_clusters: bool
    has_evaluation: bool
    next_step: str


def iterate_with(callback: ProgressCallback | None, label: str) -> Callable[[Iterable[T], int], Iterable[T]] | None:
    """Adapt a `callback(fraction, label)` to the `progress(iterable, total)` form the core takes."""
    if callback is None:
        return None

    def wrap(items: Iterable[T], total: int) -> Iterator[T]:
        for done, item in enumerate(items, start=1):
            callback(done / max(total, 1), f"{label}: {done:,}/{total:,}")
            yield item

    return wrap


class CoverlensService:
    def __init__(self, workspace: Workspace, *, chroma_url: str | None = None, clip_model: str | None = None,
                 clip_pretrained: str | None = None) -> None:
        self.workspace = workspace
        self.chroma_url = chroma_url
        self.clip_model, self.clip_pretrained = clip_model, clip_pretrained
        self._classifier: Any = None
        self._classifier_stamp: int | None = None
        self._store: CoverStore | None = None
        self._clip: tuple[Embedder | None, str] | None = None
        self._clusters: dict[str, tuple[int | None, Any]] = {}

    # -- collaborators, built on first use ------------------------------------------------------
    def classifier(self) -> Any:
        """The workspace's classifier, verified by `load_classifier`; reloaded when it is retrained."""
        sidecar = self.workspace.model_dir / "model.json"
        stamp = sidecar.stat().st_mtime_ns if sidecar.exists() else None
        if self._classifier is None or stamp != self._classifier_stamp:
            from coverlens.classifier import load_classifier

            self._classifier, self._classifier_stamp = load_classifier(self.workspace), stamp
        return self._classifier

    def embedder(self, name: str) -> Embedder:
        if name == FINETUNED:
            return self.classifier().embedder() if has_model(self.workspace) else finetuned_embedder(self.workspace)
        if name == CLIP:
            found, reason = self.clip()
            if found is None:
                raise CoverlensError(f"CLIP comparator unavailable: {reason}")
            return found
        raise CoverlensError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDER_NAMES)}")

    def clip(self) -> tuple[Embedder | None, str]:
        """The CLIP comparator (or None and why). Unless a model was named, it is the one the stored
        CLIP vectors were made with, so queries stay comparable with the index."""
        if self._clip is None:
            model, pretrained = self.clip_model, self.clip_pretrained
            if not (model or pretrained):
                model, pretrained = self._stored_clip_choice()
            self._clip = clip_embedder(model, pretrained)
        return self._clip

    def _stored_clip_choice(self) -> tuple[str | None, str | None]:
        try:
            identity = self.stored_collection(CLIP).identity
        except CoverlensError:
            return None, None
        return identity.get("model"), identity.get("pretrained")

    def store(self) -> CoverStore:
        if self._store is None:
            from coverlens.store import CoverStore

            self._store = CoverStore.open(self.workspace, url=self.chroma_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def collection(self, name: str) -> CoverCollection:
        embedder = self.embedder(name)
        return self.store().collection_for(embedder.name, embedder.identity)

    def stored_collection(self, name: str) -> CoverCollection:
        """The collection of `name` vectors, read without loading any model."""
        infos = [c for c in self.store().list_collections() if c.embedder == name and c.count]
        if not infos:
            raise StoreError(f"no {name} vectors in the store of {self.workspace.root}; run `coverlens index` first")
        return self.store().collection_for(infos[0].embedder, infos[0].identity)

    # -- the library -------------------------------------------------------------------------------
    def library_root(self) -> Path | None:
        if not self.workspace.library_file.exists():
            return None
        return Path(read_json(self.workspace.library_file)["root"])

    def cover_path(self, relpath: str) -> Path:
        root = self.library_root()
        if root is None:
            raise WorkspaceError("no library catalogued yet; run `coverlens catalog LIBRARY`")
        path = (root / relpath).resolve()
        if not path.is_relative_to(root.resolve()):
            raise WorkspaceError(f"{relpath}: outside the library")
        return path

    def library_covers(self, limit: int = 200) -> list[tuple[str, str]]:
        from coverlens.catalog import distinct_covers, load_catalog

        if not self.workspace.catalog_file.exists():
            return []
        covers = distinct_covers(load_catalog(self.workspace)).sort_values("path").head(limit)
        return list(zip(covers["path"], covers["genre"], strict=True))

    def catalog(self, library: Path, progress: ProgressCallback | None = None) -> CatalogSummary:
        from coverlens.catalog import run_catalog

        return run_catalog(self.workspace, Path(library), progress=iterate_with(progress, "catalog"))

    def overview(self) -> LibraryOverview:
        from coverlens.catalog import load_catalog
        from coverlens.inspect_report import overview

        return overview(load_catalog(self.workspace))

    # -- search ----------------------------------------------------------------------------------
    def read_query(self, source: Path | str | bytes) -> tuple[Any, str]:
        from coverlens.search.similar import content_id

        if isinstance(source, bytes):
            if len(source) > MAX_UPLOAD_BYTES:
                raise ImageError(None, f"upload is larger than the {MAX_UPLOAD_BYTES // 2**20} MiB limit")
            data, name = source, None
        else:
            data, name = read_image_bytes(source, max_bytes=MAX_UPLOAD_BYTES), source
        image, _ = decode_image(data, name=name)
        return image, content_id(data)

    def search(self, source: Path | str | bytes, *, k: int = 10, offset: int = 0,
               embedder: str = FINETUNED, vote_k: int = VOTE_K) -> SearchResult:
        """Head prediction, KNN vote with evidence, nearest covers and cluster of one query cover."""
        from coverlens.search.similar import similar_covers, vote_on_train

        image, query_id = self.read_query(source)
        result = SearchResult(query_id, [], None, [], None, None)
        if has_model(self.workspace):
            from coverlens.classifier.predict import top_k

            classifier = self.classifier()
            result.head = top_k(classifier.predict_proba([image])[0], classifier.classes, len(classifier.classes))
        else:
            result.notes.append(NO_MODEL)
        try:
            collection = self.collection(embedder)
        except CoverlensError as exc:
            result.notes.append(str(exc))
            return result
        if collection.count() == 0:
            result.notes.append(f"nothing indexed for {embedder} yet; run `coverlens index`")
            return result
        found = similar_covers(image, self.embedder(embedder), collection, k=k, offset=offset, query_id=query_id)
        result.neighbours = found.hits
        if found.vector is not None:
            result.vote = vote_on_train(found.vector, collection, vote_k, exclude_id=query_id)
            result.cluster = self._place(embedder, found.vector)
        if result.head and result.vote and result.vote.genre:
            result.agree = result.head[0].genre == result.vote.genre
            if not result.agree:
                result.notes.append(f"the head says {result.head[0].genre}, the neighbours vote {result.vote.genre}")
        return result

    def vote_for(self, source: Path | str | bytes, *, embedder: str = FINETUNED, k: int = VOTE_K) -> Vote | None:
        """The KNN genre vote of the nearest training covers, or None when nothing is indexed yet."""
        from coverlens.search.similar import embed_one, vote_on_train

        image, query_id = self.read_query(source)
        try:
            self.stored_collection(embedder)  # nothing indexed: no vote, and no model loaded for it
        except StoreError:
            return None
        vector = embed_one(image, self.embedder(embedder))
        return vote_on_train(vector, self.collection(embedder), k, exclude_id=query_id)

    def _cluster_model(self, embedder: str) -> tuple[Any, Any] | None:
        """The saved clustering, kept in memory until `coverlens clusters` rewrites it."""
        from coverlens.search.cluster_files import ClusterFiles, load_clusters

        path = ClusterFiles.of(self.workspace, embedder).model
        stamp = path.stat().st_mtime_ns if path.exists() else None
        cached = self._clusters.get(embedder)
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_clusters(self.workspace, embedder))
            self._clusters[embedder] = cached
        return cached[1]

    def _place(self, embedder: str, vector: Any) -> ClusterPlacement | None:
        from coverlens.search.clusters import place_cover

        loaded = self._cluster_model(embedder)
        if loaded is None:
            return None
        report, model = loaded
        cluster_id, strength = place_cover(model, vector)
        dominant = next((c.dominant_genre for c in report.clusters if c.cluster_id == cluster_id), "")
        return ClusterPlacement(cluster_id, dominant, strength)

    # -- jobs --------------------------------------------------------------------------------------
    def index(self, progress: ProgressCallback | None = None, *, embedder: str = "all", rebuild: bool = False) -> str:
        from coverlens.indexer import build_embedders, index_covers
        from coverlens.store import CoverStore

        choice = build_embedders(self.workspace, embedder, finetuned_loader=lambda: self.embedder(FINETUNED),
                                 clip_loader=self.clip)
        self.close()  # one client per store directory in this process: the writer's
        with CoverStore.open(self.workspace, url=self.chroma_url, writer=True) as store:
            report = index_covers(self.workspace, store, choice.embedders, rebuild=rebuild,
                                  progress=iterate_with(progress, "index"))
        return "\n".join([*choice.notes, *report.summary_lines()])

    def clusters(self, embedder: str = FINETUNED) -> ClusterReport | None:
        from coverlens.search.cluster_files import load_clusters

        loaded = load_clusters(self.workspace, embedder)
        return loaded[0] if loaded else None

    def cluster_map_path(self, embedder: str = FINETUNED) -> Path | None:
        from coverlens.search.jobs import cluster_map_path

        path = cluster_map_path(self.workspace, embedder)
        return path if path.exists() else None

    def run_clusters(self, embedder: str = FINETUNED, **params: Any) -> ClusterReport:
        from coverlens.search.jobs import cluster_stored

        return cluster_stored(self.workspace, self.stored_collection(embedder).fetch(), embedder, **params).report

    def cluster_members(self, cluster_id: int, embedder: str = FINETUNED, limit: int = 48) -> list[Hit]:
        """Covers of one cluster, most typical first (similarity = HDBSCAN membership strength)."""
        import csv

        from coverlens.search.cluster_files import ClusterFiles

        labels = ClusterFiles.of(self.workspace, embedder).labels
        if not labels.exists():
            return []
        with open(labels, newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["cluster"]) == cluster_id]
        rows.sort(key=lambda r: -float(r["probability"]))
        rows = rows[:limit]
        stored = self.stored_collection(embedder).fetch([r["id"] for r in rows])
        meta = dict(zip(stored.ids, stored.metadatas, strict=True))
        return [Hit(r["id"], float(r["probability"]), str(meta.get(r["id"], {}).get("path", "")),
                    str(meta.get(r["id"], {}).get("genre", "")), str(meta.get(r["id"], {}).get("split", "")))
                for r in rows if r["id"] in meta]

    def suspects(self, embedder: str = FINETUNED, **params: Any) -> SuspectsReport:
        from coverlens.search.jobs import suspects_of_stored

        root = self.library_root()
        return suspects_of_stored(self.workspace, self.stored_collection(embedder).fetch(), embedder,
                                  show_path=(lambda rel: str(root / rel)) if root else None, **params)

    def evaluation(self) -> dict[str, Any] | None:
        path = self.workspace.reports_dir / "evaluation.json"
        return read_json(path) if path.exists() else None

    def evaluation_files(self) -> dict[str, Any]:
        reports = self.workspace.reports_dir
        return {"table_md": reports / "evaluation.md", "confusion": sorted(reports.glob("confusion_*.png")),
                "per_genre_f1": reports / "per_genre_f1.png"}

    def run_evaluation(self, progress: ProgressCallback | None = None, **options: Any) -> dict[str, Any]:
        from coverlens.evaluate.collaborators import build_collaborators
        from coverlens.evaluate.runner import run_evaluation

        found = build_collaborators(self.workspace)
        run_evaluation(self.workspace, **found.as_kwargs(), **options,
                       progress=(lambda label: iterate_with(progress, label)) if progress else None)
        return self.evaluation() or {}

    # -- state -------------------------------------------------------------------------------------
    def status(self) -> EngineStatus:
        catalogued = len(self.library_covers(limit=10**9)) if self.workspace.catalog_file.exists() else 0
        model = has_model(self.workspace)
        indexed: dict[str, int] = {}
        if self.workspace.store_dir.exists() or self.chroma_url:
            try:
                for info in self.store().list_collections():
                    indexed[info.embedder] = indexed.get(info.embedder, 0) + info.count
            except CoverlensError:
                pass
        clip, clip_reason = self.clip()
        has_clusters = self.clusters() is not None
        has_evaluation = (self.workspace.reports_dir / "evaluation.json").exists()
        if not catalogued:
            step = "catalog a library: `coverlens catalog LIBRARY` (or the Library tab)"
        elif not model:
            step = "train the classifier: `coverlens train`"
        elif not indexed.get(FINETUNED):
            step = "index the covers: `coverlens index` (or the Library tab)"
        elif not has_clusters:
            step = "find clusters: `coverlens clusters` (or the Clusters tab)"
        elif not has_evaluation:
            step = "evaluate: `coverlens evaluate` (or the Evaluation tab)"
        else:
            step = "all set: search a cover"
        return EngineStatus(
            workspace=self.workspace.root, library_root=self.library_root(), catalogued=catalogued,
            has_model=model, model_note="" if model else NO_MODEL, indexed=indexed,
            clip_available=clip is not None,
            clip_note="" if clip is not None else clip_reason,
            has_clusters=has_clusters, has_evaluation=has_evaluation, next_step=step,
        )
