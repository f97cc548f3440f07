"""Saving and loading a clustering in the workspace: `clusters/<embedder>.{pkl,json}` and `-labels.csv`.

The model is a pickle that this program wrote (PCA + HDBSCAN with its prediction data); like any
pickle, only load files from your own workspace.
"""

from __future__ import annotations

import csv
import pickle
from dataclasses import dataclass
from pathlib import Path

from coverlens.errors import WorkspaceError
from coverlens.search.clusters import ClusterModel, ClusterReport
from coverlens.workspace import Workspace, atomic_path, read_json, write_json_atomic

MODEL_FORMAT = 1


@dataclass(frozen=True)
class ClusterFiles:
    model: Path
    report: Path
    labels: Path

    @classmethod
    def of(cls, workspace: Workspace, embedder: str) -> ClusterFiles:
        folder = clusters_dir(workspace)
        return cls(folder / f"{embedder}.pkl", folder / f"{embedder}.json", folder / f"{embedder}-labels.csv")


def clusters_dir(workspace: Workspace) -> Path:
    return workspace.root / "clusters"


def save_clusters(workspace: Workspace, report: ClusterReport, model: ClusterModel) -> ClusterFiles:
    """Write the model, the report and the per-cover labels; each file atomically."""
    files = ClusterFiles.of(workspace, report.embedder)
    with atomic_path(files.model) as tmp, open(tmp, "wb") as handle:
        pickle.dump({"format": MODEL_FORMAT, "model": model}, handle, protocol=pickle.HIGHEST_PROTOCOL)
    with atomic_path(files.labels) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "cluster", "probability"])
        for cover, label, probability in zip(model.ids, model.labels, model.probabilities, strict=True):
            writer.writerow([cover, int(label), f"{float(probability):.4f}"])
    write_json_atomic(files.report, report.to_dict())
    return files


def load_clusters(workspace: Workspace, embedder: str) -> tuple[ClusterReport, ClusterModel] | None:
    """The saved clustering of `embedder`'s vectors, or None when `coverlens clusters` has not run."""
    files = ClusterFiles.of(workspace, embedder)
    if not (files.model.exists() and files.report.exists()):
        return None
    try:
        with open(files.model, "rb") as handle:
            saved = pickle.load(handle)  # noqa: S301 - our own file, written by save_clusters
        report = ClusterReport.from_dict(read_json(files.report))
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, KeyError, TypeError) as exc:
        raise WorkspaceError(f"{files.model}: unreadable cluster model ({exc}); re-run `coverlens clusters`") from exc
    if not isinstance(saved, dict) or saved.get("format") != MODEL_FORMAT:
        raise WorkspaceError(f"{files.model}: cluster model of an unknown format; re-run `coverlens clusters`")
    return report, saved["model"]
