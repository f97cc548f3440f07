"""The clustering job over one embedder's stored vectors: fit, save, draw the map. Used by CLI and app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.clustering.params import ClusterParams
from coverlens.errors import ArgumentError
from coverlens.search.jobs import metadata_column

if TYPE_CHECKING:
    from coverlens.clustering.features import TextSource
    from coverlens.clustering.report import ClusterReport
    from coverlens.store import StoredVectors
    from coverlens.workspace import Workspace


@dataclass
class ClusterJob:
    report: ClusterReport
    map_png: Path
    report_json: Path
    labels_csv: Path
    map_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # e.g. made from an incomplete store


def cluster_stored(workspace: Workspace, stored: StoredVectors, embedder: str, *, params: ClusterParams | None = None,
                   texts: TextSource | None = None, projection: str | None = None,
                   store: dict[str, Any] | None = None, **settings: Any) -> ClusterJob:
    """Cluster stored vectors; save the labels and the report, draw the 2-D map.

    `settings` override single fields of `params` (e.g. `min_cluster_size=20`; None: keep, an
    unknown name or a value out of range is refused with ArgumentError). `texts`: the covers' OCR
    text (the service reads it from the text store; None: no text, no words). `projection`: the
    map's layout (None: umap after the umap reducer, else pca). `store`: what the report records
    about the store (see coverlens.completeness.store_state).
    """
    import time

    from coverlens.clustering.chart import PROJECTIONS, cluster_map
    from coverlens.clustering.files import save_clusters
    from coverlens.clustering.fit import cluster_vectors

    params = (params or ClusterParams()).with_settings(**settings)
    if projection is None:
        projection = "umap" if params.reducer == "umap" else "pca"
    if projection not in PROJECTIONS:
        raise ArgumentError(f"projection must be one of {', '.join(PROJECTIONS)}, got {projection!r}")
    genres = metadata_column(stored, "genre")
    result = cluster_vectors(stored.vectors, genres, stored.ids, metadata_column(stored, "path"),
                             embedder=embedder, params=params, texts=texts)
    result.report.params.update(store or {})
    files = save_clusters(workspace, result.report, result.model)
    started = time.perf_counter()
    usable = result.fitted.features.usable
    chart = cluster_map(result.fitted.reduced[usable], result.model.labels[usable],
                        [g for g, keep in zip(genres, usable, strict=True) if keep],
                        cluster_map_path(workspace, embedder),
                        title=f"{embedder} embeddings, {result.report.space} space", projection=projection,
                        seed=params.seed)
    return ClusterJob(result.report, chart, files.report, files.labels, round(time.perf_counter() - started, 3))


def cluster_map_path(workspace: Workspace, embedder: str) -> Path:
    return workspace.reports_dir / f"clusters-{embedder}.png"
