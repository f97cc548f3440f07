"""Whole jobs over one embedder's stored vectors: find suspects (clusters: coverlens.clustering)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coverlens.search.suspects import LabelSuspect, NearDuplicatePair
    from coverlens.store import StoredVectors
    from coverlens.workspace import Workspace


def metadata_column(stored: StoredVectors, key: str) -> list[str]:
    return [str(m.get(key) or "") for m in stored.metadatas]


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


def read_suspects(reports_dir: Path, embedder: str) -> SuspectsReport | None:
    """The last suspects report written for `embedder` (its JSON), or None when there is none yet."""
    from coverlens.records import Hit
    from coverlens.search.suspects import LabelSuspect, NearDuplicatePair
    from coverlens.workspace import read_json

    path = reports_dir / f"suspects-{embedder}.json"
    if not path.is_file():
        return None
    data = read_json(path)
    suspects = [LabelSuspect(**{**row, "evidence": [Hit(**hit) for hit in row.get("evidence", [])]})
                for row in data.get("label_suspects", [])]
    pairs = [NearDuplicatePair(**{k: v for k, v in row.items() if k != "cross_genre"})
             for row in data.get("near_duplicates", [])]
    return SuspectsReport(suspects, pairs, data.get("params", {}), path.with_suffix(".md"), path)
