"""The service: the one wiring of a workspace to the catalog, classifier, registered signals and store.

The CLI and the Gradio app call this and nothing else of the core (see `CoverlensAPI`). Its
collaborators come in through the constructor: the registry of signals, the classifier loader and
the store opener (tests pass fakes; the defaults are the real ones). What costs time to build (the
fastai model, the embedders, the Chroma client) is built on first use and kept: the classifier and
the fine-tuned embedder until the model file changes, the store client until `close()` or an index
run. `status()` builds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.defaults import BATCH_SIZE, PREDICT_TOP_K, SEARCH_K, SUGGEST_MIN_CONFIDENCE, VOTE_K
from coverlens.errors import CoverlensError, FileSystemError, ImageError, ModelError, StoreError, WorkspaceError
from coverlens.images import MAX_UPLOAD_BYTES, decode_image, read_image_bytes
from coverlens.records import Vote
from coverlens.registry import NO_MODEL, REGISTRY, BuildContext, Kept, Registry, has_model, model_stamp
from coverlens.service_api import (
    ClusterPlacement,
    EngineStatus,
    IndexJob,
    InspectJob,
    PredictionJob,
    ProgressCallback,
    SearchResult,
    SimilarCover,
    Source,
    iterate_with,
)
from coverlens.service_jobs import StoredJobs
from coverlens.service_text import TextJobs, text_wanted
from coverlens.workspace import Workspace, read_json

if TYPE_CHECKING:
    from PIL import Image

    from coverlens.catalog import CatalogSummary
    from coverlens.classifier import TrainConfig, TrainResult
    from coverlens.embedders import Embedder
    from coverlens.inspect_report import LibraryOverview
    from coverlens.store import CoverCollection, CoverStore
    from coverlens.suggest_job import SuggestReport

__all__ = ["ClusterPlacement", "CoverlensService", "EngineStatus", "SearchResult", "iterate_with"]

StoreOpener = Callable[..., "CoverStore"]  # (workspace, url=None, writer=False) -> store


def open_chroma_store(workspace: Workspace, url: str | None = None, writer: bool = False) -> CoverStore:
    from coverlens.store import CoverStore

    return CoverStore.open(workspace, url=url, writer=writer)


def load_workspace_classifier(workspace: Workspace) -> Any:
    from coverlens.classifier import load_classifier

    return load_classifier(workspace)


class CoverlensService(StoredJobs, TextJobs):
    def __init__(self, workspace: Workspace, *, chroma_url: str | None = None,
                 options: Mapping[str, Any] | None = None, registry: Registry | None = None,
                 load_classifier: Callable[[Workspace], Any] = load_workspace_classifier,
                 open_store: StoreOpener = open_chroma_store) -> None:
        """`options`: the embedders' options by key (see `coverlens.registry.Option`)."""
        self.workspace = workspace
        self.chroma_url = chroma_url
        self.registry = registry or REGISTRY
        self._load_classifier, self._open_store = load_classifier, open_store
        self._classifier: Any = None
        self._classifier_stamp: Any = None
        self._store: CoverStore | None = None
        self._clusters: dict[str, tuple[int | None, Any]] = {}
        self._opening = threading.Lock()  # the app searches side by side: one first use builds, not two
        self.context = BuildContext(workspace, self.classifier, dict(options or {}), self._stored_identity)
        self.kept = Kept(self.registry, self.context)

    # -- collaborators, built on first use ------------------------------------------------------
    def classifier(self) -> Any:
        """The workspace's classifier, verified by `load_classifier`; reloaded when it is retrained."""
        stamp = model_stamp(self.context)
        kept = self._classifier
        if kept is None or stamp != self._classifier_stamp:
            with self._opening:
                kept = self._classifier
                if kept is None or stamp != self._classifier_stamp:  # not loaded meanwhile by another search
                    kept = self._load_classifier(self.workspace)
                    self._classifier_stamp, self._classifier = None, kept  # new model first, then its stamp
                    self._classifier_stamp = stamp
        return kept

    def embedder_choices(self) -> list[str]:
        return self.registry.offered()

    def _name(self, embedder: str | None) -> str:
        return embedder or self.registry.default_embedder

    def embedder(self, name: str | None = None) -> Embedder:
        """The registered embedder `name`, built once and kept (a CoverlensError says why it cannot be had)."""
        return self.kept.embedder(self._name(name))

    def _kept_embedder(self, name: str) -> Embedder | None:
        try:
            return self.embedder(name)
        except CoverlensError:
            return None

    def _stored_identity(self, name: str) -> dict[str, Any] | None:
        try:
            return self.stored_collection(name).identity
        except CoverlensError:
            return None

    def store(self) -> CoverStore:
        store = self._store
        if store is None:
            with self._opening:
                if self._store is None:
                    self._store = self._open_store(self.workspace, url=self.chroma_url)
                store = self._store
        return store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def load_store(self) -> bool:
        """Follow the store now if another process changed it (a job's child process) and load each
        collection's vectors, so the next search does not wait for the reload; True when it did."""
        store = self.store()
        if not store.check_fresh():
            return False
        for info in store.list_collections():
            if info.count:
                store.collection_for(info.embedder, info.identity).load()
        return True

    def command_options(self, *, store: bool = True) -> list[str] | None:
        """The `coverlens` options that open this same service in another process (workspace; with
        `store`, the store and embedder options too), or None when it was built with replaced
        collaborators (tests)."""
        replaced = (self.registry is not REGISTRY or self._load_classifier is not load_workspace_classifier
                    or self._open_store is not open_chroma_store)
        if replaced:  # another process, built as `coverlens` builds it, would not be this service
            return None
        args = ["--workspace", str(self.workspace.root)]
        if not store:
            return args
        if self.chroma_url:
            args += ["--chroma-url", self.chroma_url]
        for option in self.registry.options():
            if self.context.options.get(option.key) is not None:
                args += [option.flag, str(self.context.options[option.key])]
        return args

    def collection(self, name: str | None = None) -> CoverCollection:
        embedder = self.embedder(name)
        return self.store().collection_for(embedder.name, embedder.identity)

    def stored_collection(self, name: str | None = None) -> CoverCollection:
        """The collection of `name` vectors, read without loading any model."""
        name = self._name(name)
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

    def cover_image(self, relpath: str, source: str = "file") -> Path | Image.Image:
        """What the app shows for a catalogued cover: its file, or the picture embedded in it, decoded
        (label it with `coverlens.sources.cover_name(relpath, source)`)."""
        from coverlens.sources import FILE, open_cover

        path = self.cover_path(relpath)  # refuses a path outside the library
        if source in ("", FILE):
            return path
        return open_cover(self.library_root() or path.parent, relpath, source)

    def library_cover(self, relpath: str) -> Source:
        """A catalogued cover as a search query: its file, or the bytes of the picture embedded in it."""
        from coverlens.catalog import distinct_covers, load_catalog
        from coverlens.sources import FILE, read_cover

        path = self.cover_path(relpath)
        covers = distinct_covers(load_catalog(self.workspace))
        sources = covers.loc[covers["path"] == relpath, "source"]
        source = str(sources.iloc[0]) if len(sources) else FILE
        return path if source in ("", FILE) else read_cover(self.library_root() or path.parent, relpath, source)

    def library_covers(self, limit: int = 200) -> list[tuple[str, str]]:
        from coverlens.catalog import distinct_covers, load_catalog

        if not self.workspace.catalog_file.exists():
            return []
        covers = distinct_covers(load_catalog(self.workspace)).sort_values("path").head(limit)
        return list(zip(covers["path"], covers["genre"], strict=True))

    def catalog(self, library: Path | None, progress: ProgressCallback | None = None,
                **options: Any) -> CatalogSummary:
        """Catalog `library` (None: the one catalogued before); `options` go to `run_catalog`."""
        from coverlens.catalog import run_catalog
        from coverlens.locks import workspace_writer

        with workspace_writer(self.workspace, "catalog"):
            return run_catalog(self.workspace, Path(library) if library is not None else None,
                               progress=iterate_with(progress, "catalog"), **options)

    def overview(self) -> LibraryOverview:
        from coverlens.catalog import load_catalog
        from coverlens.inspect_report import overview

        view = overview(load_catalog(self.workspace))
        if self.workspace.library_file.exists():
            view.source = str(read_json(self.workspace.library_file).get("source") or "folders")
        return view

    def inspect(self, placeholder_min: int | None = None) -> InspectJob:
        from coverlens.catalog import load_catalog
        from coverlens.inspect_report import DEFAULT_PLACEHOLDER_MIN, write_inspect_report
        from coverlens.locks import workspace_writer

        chosen = DEFAULT_PLACEHOLDER_MIN if placeholder_min is None else placeholder_min
        with workspace_writer(self.workspace, "inspect"):
            view, report = write_inspect_report(self.workspace, load_catalog(self.workspace),
                                                placeholder_min=chosen)
        return InspectJob(view, Path(report))

    # -- the model -------------------------------------------------------------------------------
    def train(self, config: TrainConfig, *, progress: bool = True) -> TrainResult:
        from coverlens.classifier import train_classifier

        return train_classifier(self.workspace, config, progress=progress)  # a new model file: a new stamp

    def predict(self, paths: Sequence[Path], *, k: int = PREDICT_TOP_K, tta: bool = False,
                vote_k: int = VOTE_K) -> list[PredictionJob]:
        """The head's top genres for each file, with the KNN vote beside it once the covers are indexed."""
        from coverlens.classifier import predict_files

        records = predict_files(self.classifier(), list(paths), k=k, tta=tta)
        jobs = [PredictionJob(r, None) if r.error else self._predicted_with_vote(r, vote_k) for r in records]
        for job in jobs:  # the words read, the text model and the fused prediction beside the head
            if not job.prediction.error:
                image, query_id = self.read_query(job.prediction.path)
                job.text = self._text_evidence(image, query_id, k=k)
        return jobs

    def _predicted_with_vote(self, record: Any, vote_k: int) -> PredictionJob:
        """The head's answer stands even when the store cannot be read (a read-only disk): a note says why
        there is no vote, instead of a failure or a false "not indexed yet"."""
        try:
            vote = self.vote_for(record.path, k=vote_k)
        except FileSystemError as exc:
            return PredictionJob(record, None, [f"no KNN vote: {exc}"])
        return PredictionJob(record, vote, self.store_warnings() if vote is not None else [])

    def store_warnings(self, embedder: str | None = None) -> list[str]:
        """Warnings about the stored vectors answers come from: one when an index run has not finished."""
        from coverlens.completeness import collection_warnings

        try:
            return collection_warnings(self.stored_collection(embedder))
        except CoverlensError:
            return []  # nothing stored, or unreadable: the command that reads it says so

    # -- search ----------------------------------------------------------------------------------
    def read_query(self, source: Source) -> tuple[Any, str]:
        from coverlens.search.similar import content_id

        if isinstance(source, bytes):
            if len(source) > MAX_UPLOAD_BYTES:
                raise ImageError(None, f"upload is larger than the {MAX_UPLOAD_BYTES // 2**20} MiB limit")
            data, name = source, None
        else:
            data, name = read_image_bytes(source, max_bytes=MAX_UPLOAD_BYTES), source
        image, _ = decode_image(data, name=name)
        return image, content_id(data)

    def search(self, source: Source, *, k: int = SEARCH_K, offset: int = 0, embedder: str | None = None,
               vote_k: int = VOTE_K, text: bool = True) -> SearchResult:
        """Head prediction, KNN vote with evidence, nearest covers and cluster of one query cover; with
        `text`, the words on it and the text model's and fused genres (`read_words` alone: later)."""
        from coverlens.search.similar import similar_covers, vote_on_train

        name = self._name(embedder)
        image, query_id = self.read_query(source)
        result = SearchResult(query_id, [], None, [], None, None)
        vector = None
        if has_model(self.workspace):
            from coverlens.classifier.predict import top_k
            from coverlens.search.one_pass import head_and_vector, shares_body

            classifier = self.classifier()
            if shares_body(classifier, self._kept_embedder(name)):  # one body pass for head and neighbours
                probs, vector = head_and_vector(classifier, image)
            else:
                probs = classifier.predict_proba([image])[0]
            result.head = top_k(probs, classifier.classes, len(classifier.classes))
            head_proba = probs
        else:
            head_proba = None
            result.notes.append(NO_MODEL)
        if text:
            result.text = self._text_evidence(image, query_id, head_proba)
        try:
            collection = self.collection(name)
        except CoverlensError as exc:
            result.notes.append(self._while_written(str(exc)))
            return result
        if collection.count() == 0:
            result.notes.append(self._while_written(f"nothing indexed for {name} yet; run `coverlens index`"))
            return result
        from coverlens.completeness import collection_warnings

        result.notes.extend(collection_warnings(collection))  # the app shows notes as a banner
        found = similar_covers(image, self.embedder(name), collection, k=k, offset=offset, query_id=query_id,
                               vector=vector)
        result.neighbours = found.hits
        if found.vector is not None:
            result.vote = vote_on_train(found.vector, collection, vote_k, exclude_id=query_id)
            result.cluster = self._place(name, found.vector)
        if result.head and result.vote and result.vote.genre:
            result.agree = result.head[0].genre == result.vote.genre
            if not result.agree:
                result.notes.append(f"the head says {result.head[0].genre}, the neighbours vote {result.vote.genre}")
        return result

    def _while_written(self, problem: str) -> str:
        """`problem` as the person should read it: while another command writes the workspace (an
        `index --rebuild` drops and refills the store), the store's state is passing, not the answer."""
        from coverlens.locks import workspace_busy

        holder = workspace_busy(self.workspace)
        if holder is None:
            return problem
        return (f"the store is being written ({holder.describe()}): no answer from it right now; "
                f"search again in a moment ({problem})")

    def similar(self, source: Source, *, k: int = SEARCH_K, offset: int = 0,
                embedder: str | None = None) -> list[SimilarCover]:
        """The stored covers nearest to `source` (the query cover itself left out), with their files."""
        from coverlens.search.similar import similar_covers

        image, query_id = self.read_query(source)
        self.stored_collection(embedder)  # "run coverlens index" before any model loads
        found = similar_covers(image, self.embedder(embedder), self.collection(embedder), k=k, offset=offset,
                               query_id=query_id)
        return [SimilarCover(hit, self.cover_path(hit.path)) for hit in found.hits]

    def vote_for(self, source: Source, *, embedder: str | None = None, k: int = VOTE_K) -> Vote | None:
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
        from coverlens.clustering.files import ClusterFiles, load_clusters

        path = ClusterFiles.of(self.workspace, embedder).report  # written last: a new clustering is complete
        stamp = path.stat().st_mtime_ns if path.exists() else None
        cached = self._clusters.get(embedder)
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_clusters(self.workspace, embedder))
            self._clusters[embedder] = cached
        return cached[1]

    def _place(self, embedder: str, vector: Any) -> ClusterPlacement | None:
        from coverlens.clustering.place import place_cover

        loaded = self._cluster_model(embedder)
        if loaded is None:
            return None
        report, model = loaded
        cluster_id, strength = place_cover(model, vector, self.collection(embedder))
        dominant = next((c.dominant_genre for c in report.clusters if c.cluster_id == cluster_id), "")
        return ClusterPlacement(cluster_id, dominant, strength)

    # -- suggestions -------------------------------------------------------------------------------
    def suggest(self, progress: ProgressCallback | None = None, *, embedder: str | None = None, k: int = VOTE_K,
                min_confidence: float = SUGGEST_MIN_CONFIDENCE, batch_size: int = BATCH_SIZE) -> SuggestReport:
        """Genre suggestions for unlabelled and suspect covers, from every registered genre signal that
        can be had and the KNN vote over `embedder`'s stored vectors; writes reports/suggestions.*."""
        from coverlens.completeness import collection_warnings
        from coverlens.locks import workspace_writer
        from coverlens.suggest_job import available_signals, run_suggest

        self.workspace.require_catalog()
        name = self._name(embedder)
        with workspace_writer(self.workspace, "suggest"):  # it writes the suggestions reports
            signals, notes = available_signals(self.registry, self.kept)
            try:
                collection = self.stored_collection(name)
                stored, notes = collection.fetch(), [*notes, *collection_warnings(collection)]
            except CoverlensError as exc:
                stored, notes = None, [*notes, str(exc)]
            return run_suggest(self.workspace, signals=signals, stored=stored, embedder=name, k=k,
                               min_confidence=min_confidence, batch_size=batch_size, notes=notes,
                               progress=iterate_with(progress, "suggest"))

    def suggestions(self) -> dict[str, Any] | None:
        """The last suggestions written (reports/suggestions.json), or None."""
        from coverlens.suggest_job import read_suggestions

        return read_suggestions(self.workspace.reports_dir)

    # -- jobs --------------------------------------------------------------------------------------
    def index(self, progress: ProgressCallback | None = None, *, embedder: str = "all", rebuild: bool = False,
              batch_size: int = BATCH_SIZE, readers: int | None = None, ray: str | None = None,
              text: bool | None = None) -> IndexJob:
        """Bring the catalog up to date with the library (see `coverlens.library_sync`), then embed the
        catalogued covers not yet stored with `embedder` ("all": every indexed one that can be had);
        `ray`: on the Ray cluster at that address ("auto": a local one), into a Chroma server; then read
        the words on the covers not yet read (`text`: None follows `text_wanted`)."""
        from coverlens.indexer import choose_embedders, index_covers
        from coverlens.indexer.ray_runner import write_on_ray
        from coverlens.library_sync import follow_library
        from coverlens.locks import workspace_writer

        self.workspace.require_catalog()
        writer = write_on_ray(ray, self.chroma_url) if ray else None  # refuses an embedded store first
        read_text = text_wanted(text)
        try:
            choice = choose_embedders(self.registry, embedder, self.kept.embedder)
        except ModelError as exc:  # nothing to embed with (no model yet): the words can still be read
            if not read_text or embedder != "all":
                raise
            choice, nothing = None, str(exc)
        with workspace_writer(self.workspace, "index"):
            catalogued = follow_library(self, progress)
            if choice is None:
                from coverlens.indexer import IndexReport

                report, location, notes = IndexReport(catalogued.distinct, []), "", [f"{nothing}; reading text only"]
            else:
                # No close() of the reader here: in one process the writer shares the reader's client
                # (store.freshness.SharedClient), so searches keep answering during the run and see each batch.
                with self._open_store(self.workspace, url=self.chroma_url, writer=True) as store:
                    report = index_covers(self.workspace, store, choice.embedders, rebuild=rebuild,
                                          batch_size=batch_size, readers=readers,
                                          progress=iterate_with(progress, "index"), writer=writer)
                    location, notes = str(store.location), choice.notes
            notes = [f"library: {catalogued.describe()}", *notes]
            if read_text:
                notes.append(self._read_text(progress, ray).describe())
        return IndexJob(report, location, notes)
