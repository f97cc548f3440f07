"""A clustering in the workspace: `clusters/<embedder>.json` (the report) and `<embedder>-labels.csv`.

The labels file has one row per clustered cover: id, cluster (-1 = noise), probability (the
clusterer's membership strength) and `assigned`, how the cover got its label (`clusterer`,
`outlier-reduction`, `noise`, `no-signal`): a cover moved by outlier reduction is marked, never
passed off as the clusterer's. Nothing is pickled: loading runs no code and imports no umap.

The two files are replaced one after the other (labels, then report), each atomically; the report
carries the labels file's sha256, so a reader that caught a new labels file beside the old report
(or the reverse) sees the mismatch and reads again: it never returns a mismatched pair.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

from coverlens.clustering.fit import AS_NOISE, BY_CLUSTERER, ClusterModel
from coverlens.clustering.report import ClusterReport
from coverlens.errors import WorkspaceError
from coverlens.workspace import Workspace, atomic_path, read_json, remove_stale_temps, write_json_atomic

LABEL_COLUMNS = ["id", "cluster", "probability", "assigned"]
PAIR_TRIES = 50  # a reader's tries to catch a matched pair while a writer swaps them
PAIR_WAIT_S = 0.02


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
    """Write the labels, then the report naming their sha256 (its presence says the pair is
    complete); each atomically. Sets `report.labels_sha256`."""
    files = ClusterFiles.of(workspace, report.embedder)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(LABEL_COLUMNS)
    for row in zip(model.ids, model.labels, model.probabilities, model.assigned, strict=True):
        writer.writerow([row[0], int(row[1]), f"{float(row[2]):.4f}", row[3]])
    data = text.getvalue().encode("utf-8")
    with atomic_path(files.labels) as tmp:
        tmp.write_bytes(data)
    report.labels_sha256 = hashlib.sha256(data).hexdigest()
    write_json_atomic(files.report, report.to_dict())
    files.report.with_suffix(".pkl").unlink(missing_ok=True)  # the pickled model of the former format
    remove_stale_temps(files.report.parent)  # a killed run's temp files, that one's included
    return files


def read_labels(path: Path, embedder: str, data: bytes | None = None) -> ClusterModel:
    import numpy as np

    try:
        data = path.read_bytes() if data is None else data
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
        labels = np.array([int(r["cluster"]) for r in rows], dtype=int)
        probabilities = np.array([float(r["probability"]) for r in rows], dtype=np.float32)
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path}: unreadable cluster labels ({exc}); re-run `coverlens clusters`") from exc
    assigned = [r.get("assigned") or (AS_NOISE if int(r["cluster"]) < 0 else BY_CLUSTERER) for r in rows]
    return ClusterModel(embedder, [r["id"] for r in rows], labels, probabilities, assigned)


def load_clusters(workspace: Workspace, embedder: str) -> tuple[ClusterReport, ClusterModel] | None:
    """The saved clustering of `embedder`'s vectors, or None when `coverlens clusters` has not run."""
    files = ClusterFiles.of(workspace, embedder)
    if not (files.labels.exists() and files.report.exists()):
        return None
    for _ in range(PAIR_TRIES):
        try:
            report = ClusterReport.from_dict(read_json(files.report))
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkspaceError(f"{files.report}: unreadable cluster report ({exc}); "
                                 "re-run `coverlens clusters`") from exc
        try:
            data = files.labels.read_bytes()
        except OSError as exc:
            raise WorkspaceError(f"{files.labels}: unreadable cluster labels ({exc}); "
                                 "re-run `coverlens clusters`") from exc
        if not report.labels_sha256 or hashlib.sha256(data).hexdigest() == report.labels_sha256:
            return report, read_labels(files.labels, embedder, data)
        time.sleep(PAIR_WAIT_S)  # a writer is between the two files: read both again
    raise WorkspaceError(f"{files.labels}: cluster labels do not match the report {files.report.name} (changed "
                         "or damaged); re-run `coverlens clusters`")
