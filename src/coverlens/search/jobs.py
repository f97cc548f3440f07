"""Whole jobs over one embedder's stored vectors: cluster them, find suspects. Used by CLI and app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coverlens.search.clusters import ClusterReport
    from coverlens.search.suspects import LabelSuspect, NearDuplicatePair
    from coverlens.store import StoredVectors
    from coverlens.workspace import Workspace


def metadata_column(stored: StoredVectors, key: str) -> list[str]:
    return [str(m.get(key) or "") for m in stored.metadatas]


@dataclass
class ClusterJob:
    report: ClusterReport
    map_png: Path
    report_json: Path
    labels_csv: Path
    warnings: list[str] = field(default_factory=list)  # e.g. made from an incomplete store


def cluster_stored(workspace: Workspace, stored: StoredVectors, embedder: str, *, min_cluster_size: int | None = None,
                   min_samples: int | None = None, pca_dim: int | None = None, projection: str = "pca",
                   store: dict[str, Any] | None = None) -> ClusterJob:
    """HDBSCAN over stored vectors; saves the model, labels, report and the 2-D map. `store`: what the
    report records about the store (see coverlens.completeness.store_state)."""
    from coverlens.search.cluster_files import save_clusters
    from coverlens.search.cluster_map import cluster_map
    from coverlens.search.clusters import DEFAULT_PCA_DIM, cluster_vectors

    genres = metadata_column(stored, "genre")
    report, model = cluster_vectors(stored.vectors, genres, stored.ids, metadata_column(stored, "path"),
                                    embedder=embedder, min_cluster_size=min_cluster_size,
                                    min_samples=min_samples, pca_dim=DEFAULT_PCA_DIM if pca_dim is None else pca_dim)
    report.params.update(store or {})
    files = save_clusters(workspace, report, model)
    chart = cluster_map(model.reduce(stored.vectors), model.labels, genres, cluster_map_path(workspace, embedder),
                        title=f"{embedder} embeddings", projection=projection, reduced_by_pca=model.pca is not None)
    return ClusterJob(report, chart, files.report, files.labels)


def cluster_map_path(workspace: Workspace, embedder: str) -> Path:
    return workspace.reports_dir / f"clusters-{embedder}.png"


@dataclass
class SuspectsReport:
    label_suspects: list[LabelSuspect]
    near_duplicates: list[NearDuplicatePair]
    params: dict[str, Any] = field(default_factory=dict)
    markdown: Path | None = None
    json: Path | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. made from an incomplete store


def suspects_of_stored(workspace: Workspace, stored: StoredVectors, embedder: str, *, k: int = 10,
                       min_share: float = 0.7, threshold: float = 0.97,
                       show_path: Callable[[str], str] | None = None) -> SuspectsReport:
    """Covers whose neighbours vote for another genre, and near-duplicate pairs; writes both reports."""
    from coverlens.search.suspects import find_label_suspects, find_near_duplicates
    from coverlens.search.suspects_report import write_suspects_report

    ids, genres, paths = stored.ids, metadata_column(stored, "genre"), metadata_column(stored, "path")
    filed = [g or genres[i] for i, g in enumerate(metadata_column(stored, "genres"))]
    sources = [s or "file" for s in metadata_column(stored, "source")]
    suspects = find_label_suspects(stored.vectors, ids, genres, paths, k=k, min_share=min_share,
                                   splits=metadata_column(stored, "split"), filed_genres=filed, sources=sources)
    pairs = find_near_duplicates(stored.vectors, ids, genres, paths, threshold=threshold, sources=sources)
    params = {"embedder": embedder, "covers": len(ids), "k": k, "min_share": min_share, "threshold": threshold}
    extra = {"show_path": show_path} if show_path else {}
    markdown, data = write_suspects_report(workspace.reports_dir, embedder, suspects, pairs, params, **extra)
    return SuspectsReport(suspects, pairs, params, markdown, data)
