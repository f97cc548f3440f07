"""The service's jobs over stored vectors and reports: clusters, suspects, evaluation, status.

A part of `CoverlensService` (split out to keep each module small); it relies on the service's
`workspace`, `registry`, `kept`, `store()`, `stored_collection()` and `library_root()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.defaults import CLUSTER_MEMBERS, DUPLICATE_THRESHOLD, SUSPECT_MIN_SHARE, VOTE_K
from coverlens.errors import CoverlensError
from coverlens.records import Hit
from coverlens.registry import NO_MODEL, has_model
from coverlens.service_api import EmbedderState, EngineStatus, ProgressCallback, iterate_with
from coverlens.workspace import read_json

if TYPE_CHECKING:
    from coverlens.clustering.jobs import ClusterJob
    from coverlens.clustering.report import ClusterReport
    from coverlens.evaluate import EvaluationReport
    from coverlens.search.jobs import SuspectsReport


class StoredJobs:
    """Mixed into `CoverlensService`."""

    # -- clusters ---------------------------------------------------------------------------------
    def clusters(self, embedder: str | None = None) -> ClusterReport | None:
        loaded = self._cluster_model(self._name(embedder))  # kept until a new clustering is written
        return loaded[0] if loaded else None

    def cluster_map_path(self, embedder: str | None = None) -> Path | None:
        from coverlens.clustering.jobs import cluster_map_path

        path = cluster_map_path(self.workspace, self._name(embedder))
        return path if path.exists() else None

    def run_clusters(self, embedder: str | None = None, *, allow_incomplete: bool = False,
                     **params: Any) -> ClusterJob:
        """Cluster the stored vectors of `embedder` (`params`: ClusterParams fields, `params=`, or
        `projection=`); the record names the files written. The covers' OCR text, where the text stage
        has read it, gives the words and the text spaces. A report made from a complete store is not
        replaced by one from an incomplete store unless `allow_incomplete`."""
        from coverlens.clustering.files import ClusterFiles
        from coverlens.clustering.jobs import cluster_stored
        from coverlens.clustering.texts import workspace_texts
        from coverlens.completeness import guard_replacement, store_state
        from coverlens.locks import workspace_writer

        name = self._name(embedder)
        with workspace_writer(self.workspace, "clusters"):
            collection = self.stored_collection(name)
            reason = collection.incomplete_reason
            reasons = {collection.name: reason} if reason else {}
            existing = ClusterFiles.of(self.workspace, name).report
            recorded = read_json(existing).get("params") if existing.exists() else None
            guard_replacement(existing, reasons, allow_incomplete, "the clusters report", recorded)
            stored = collection.fetch()
            job = cluster_stored(self.workspace, stored, name, store=store_state(reasons),
                                 texts=workspace_texts(self.workspace, stored.ids), **params)
        job.warnings = self.store_warnings(name) if reasons else []
        return job

    def cluster_members(self, cluster_id: int, embedder: str | None = None,
                        limit: int = CLUSTER_MEMBERS) -> list[Hit]:
        """Covers of one cluster, most typical first: the clusterer's own members by membership strength
        (the similarity shown), then those assigned by outlier reduction."""
        name = self._name(embedder)
        loaded = self._cluster_model(name)
        if loaded is None:
            return []
        rows = loaded[1].members(cluster_id, limit)
        stored = self.stored_collection(name).fetch([cover for cover, _, _ in rows])
        meta = dict(zip(stored.ids, stored.metadatas, strict=True))
        return [Hit(cover, strength, str(meta[cover].get("path", "")), str(meta[cover].get("genre", "")),
                    str(meta[cover].get("split", "")), str(meta[cover].get("source") or "file"))
                for cover, strength, _ in rows if cover in meta]

    # -- suspects ---------------------------------------------------------------------------------
    def suspects(self, embedder: str | None = None, *, k: int = VOTE_K, min_share: float = SUSPECT_MIN_SHARE,
                 threshold: float = DUPLICATE_THRESHOLD) -> SuspectsReport:
        from coverlens.completeness import collection_warnings
        from coverlens.locks import workspace_writer
        from coverlens.search.jobs import suspects_of_stored

        name, root = self._name(embedder), self.library_root()
        with workspace_writer(self.workspace, "suspects"):  # it writes the suspects reports
            collection = self.stored_collection(name)
            found = suspects_of_stored(self.workspace, collection.fetch(), name, k=k, min_share=min_share,
                                       threshold=threshold, show_path=(lambda rel: str(root / rel)) if root else None)
        found.warnings = collection_warnings(collection)
        return found

    # -- evaluation -------------------------------------------------------------------------------
    def evaluation(self) -> dict[str, Any] | None:
        path = self.workspace.reports_dir / "evaluation.json"
        return read_json(path) if path.exists() else None

    def evaluation_files(self) -> dict[str, Any]:
        reports = self.workspace.reports_dir
        return {"table_md": reports / "evaluation.md", "confusion": sorted(reports.glob("confusion_*.png")),
                "per_genre_f1": reports / "per_genre_f1.png"}

    def run_evaluation(self, progress: ProgressCallback | None = None, *, skip: Mapping[str, str] | None = None,
                       **options: Any) -> EvaluationReport:
        """Every registered genre signal and KNN row on the held-out split (the kept models reused);
        `skip` maps a signal or embedder name to why it is left out; `options` go to `run_evaluation`."""
        from coverlens.completeness import STORE_INCOMPLETE, guard_replacement, incomplete_warning, store_state
        from coverlens.evaluate import build_collaborators, run_evaluation
        from coverlens.evaluate.report import write_report
        from coverlens.evaluate.sources import chroma_vector_source
        from coverlens.locks import workspace_writer

        allow_incomplete = bool(options.pop("allow_incomplete", False))
        write = bool(options.pop("write", True))
        self.workspace.require_catalog()
        with workspace_writer(self.workspace, "evaluate"):
            found = build_collaborators(self.workspace, skip=skip, registry=self.registry, kept=self.kept)
            store = None
            try:  # read stored train vectors through the service's own client (one per store per process)
                store = self.store() if self.workspace.store_dir.is_dir() or self.chroma_url else None
                reasons = store.incomplete() if store is not None else {}
            except CoverlensError:
                reasons = {}  # the source opens it per read and says why it cannot be used
            existing = self.workspace.reports_dir / "evaluation.json"
            recorded = (self.evaluation() or {}).get("settings") if existing.exists() else None
            guard_replacement(existing, reasons, allow_incomplete, "the evaluation report", recorded)
            options.setdefault("vector_source", chroma_vector_source(self.workspace, store))
            report = run_evaluation(self.workspace, **found.as_kwargs(), registry=self.registry, **options,
                                    write=False,
                                    progress=(lambda label: iterate_with(progress, label)) if progress else None)
            report.settings.update(store_state(reasons))
            report.notes.extend(incomplete_warning(reason) for reason in report.settings[STORE_INCOMPLETE].values())
            return write_report(report, self.workspace.reports_dir) if write else report

    # -- state -------------------------------------------------------------------------------------
    def status(self) -> EngineStatus:
        """The engine's state, cheaply: no model is loaded and no network asked."""
        catalogued = len(self.library_covers(limit=10**9)) if self.workspace.catalog_file.exists() else 0
        model = has_model(self.workspace)
        indexed: dict[str, int] = {}
        changed = None
        if self.workspace.store_dir.exists() or self.chroma_url:
            try:
                for info in self.store().list_collections():
                    indexed[info.embedder] = indexed.get(info.embedder, 0) + info.count
                changed = self.store().last_changed()  # the generation another process's index run wrote
            except CoverlensError:
                pass
        embedders = {name: EmbedderState(self.registry.embedder(name).label, *self.kept.state(name))
                     for name in self.registry.offered()}
        has_clusters = self.clusters() is not None
        has_evaluation = (self.workspace.reports_dir / "evaluation.json").exists()
        if not catalogued:
            step = "catalog a library: `coverlens catalog LIBRARY` (or the Library tab)"
        elif not model:
            step = "train the classifier: `coverlens train`"
        elif not indexed.get(self.registry.default_embedder):
            step = "index the covers: `coverlens index` (or the Library tab)"
        elif not has_clusters:
            step = "find clusters: `coverlens clusters` (or the Clusters tab)"
        elif not has_evaluation:
            step = "evaluate: `coverlens evaluate` (or the Evaluation tab)"
        else:
            step = "all set: search a cover"
        return EngineStatus(
            workspace=self.workspace.root, library_root=self.library_root(), catalogued=catalogued,
            has_model=model, model_note="" if model else NO_MODEL, indexed=indexed, embedders=embedders,
            has_clusters=has_clusters, has_evaluation=has_evaluation, next_step=step, store_changed=changed,
        )
