"""A clustering in the workspace: `clusters/<embedder>.json` (the report) and `<embedder>-labels.csv`.

The labels file has one row per clustered cover: id, cluster (-1 = noise), probability (the
clusterer's membership strength) and `assigned`, how the cover got its label (`clusterer`,
`outlier-reduction`, `noise`, `no-signal`): a cover moved by outlier reduction is marked, never
passed off as the clusterer's. Nothing is pickled: loading runs no code and imports no umap.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from coverlens.clustering.fit import AS_NOISE, BY_CLUSTERER, ClusterModel
from coverlens.clustering.report import ClusterReport
from coverlens.errors import WorkspaceError
from coverlens.workspace import Workspace, atomic_path, read_json, remove_stale_temps, write_json_atomic

LABEL_COLUMNS = ["id", "cluster", "probability", "assigned"]


@dataclass(frozen=True)
class ClusterFiles:
    report: Path
    labels: Path

    @classmethod
    def of(cls, workspace: Workspace, embedder: str) -> ClusterFiles:
        folder = clusters_dir(workspace)
        return cls(folder / f"{embedder}.json", folder / f"{embedder}-labels.csv")


def clusters_dir(workspace: Workspace) -> Path:
    return workspace.root / "clusters"


def save_clusters(workspace: Workspace, report: ClusterReport, model: ClusterModel) -> ClusterFiles:
    """Write the labels, then the report (its presence says the pair is complete); each atomically."""
    files = ClusterFiles.of(workspace, report.embedder)
    with atomic_path(files.labels) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(LABEL_COLUMNS)
        for row in zip(model.ids, model.labels, model.probabilities, model.assigned, strict=True):
            writer.writerow([row[0], int(row[1]), f"{float(row[2]):.4f}", row[3]])
    write_json_atomic(files.report, report.to_dict())
    files.report.with_suffix(".pkl").unlink(missing_ok=True)  # the pickled model of the former format
    remove_stale_temps(files.report.parent)  # a killed run's temp files, that one's included
    return files


def read_labels(path: Path, embedder: str) -> ClusterModel:
    import numpy as np

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        labels = np.array([int(r["cluster"]) for r in rows], dtype=int)
        probabilities = np.array([float(r["probability"]) for r in rows], dtype=np.float32)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise WorkspaceError(f"{path}: unreadable cluster labels ({exc}); re-run `coverlens clusters`") from exc
    assigned = [r.get("assigned") or (AS_NOISE if int(r["cluster"]) < 0 else BY_CLUSTERER) for r in rows]
    return ClusterModel(embedder, [r["id"] for r in rows], labels, probabilities, assigned)


def load_clusters(workspace: Workspace, embedder: str) -> tuple[ClusterReport, ClusterModel] | None:
    """The saved clustering of `embedder`'s vectors, or None when `coverlens clusters` has not run."""
    files = ClusterFiles.of(workspace, embedder)
    if not (files.labels.exists() and files.report.exists()):
        return None
    try:
        report = ClusterReport.from_dict(read_json(files.report))
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkspaceError(f"{files.report}: unreadable cluster report ({exc}); re-run `coverlens clusters`") from exc
    return report, read_labels(files.labels, embedder)
