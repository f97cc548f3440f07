"""What an index run has to do for one collection: the catalog's covers against what is stored.

Covers are identified by the hash of their bytes, so the plan is three set differences: covers
not yet stored (embed them), stored covers gone from the library (delete them), and stored covers
whose path, genre or split changed (rewrite their metadata; the vectors stay right).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from coverlens.store import CoverCollection


@dataclass(frozen=True)
class Cover:
    id: str
    path: str  # relative to the library root
    metadata: dict[str, Any]
    source: str = "file"  # where the picture is inside `path` (see `coverlens.sources.read_cover`)


def cover_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The metadata stored with a cover's vector (what search results and filters need).

    `source` lets every reader of the store open an embedded picture through `read_cover`; an
    unlabelled cover is stored with genre "" and split "unlabelled" (it never votes).
    """
    return {"path": str(row["path"]), "source": str(row.get("source") or "file"), "genre": str(row["genre"]),
            "genres": str(row["genres"]), "split": str(row["split"]), "width": int(row["width"]),
            "height": int(row["height"])}


def covers_from_catalog(distinct: pd.DataFrame) -> dict[str, Cover]:
    """id -> Cover for each row of `coverlens.catalog.distinct_covers`."""
    covers = {}
    for row in distinct.to_dict("records"):
        metadata = cover_metadata(row)
        covers[str(row["id"])] = Cover(str(row["id"]), str(row["path"]), metadata, metadata["source"])
    return covers


@dataclass
class CollectionPlan:
    collection: CoverCollection
    new: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    stored: int = 0  # covers in the collection before the run

    @property
    def nothing_to_do(self) -> bool:
        return not (self.new or self.gone or self.changed)


def plan_collection(collection: CoverCollection, covers: dict[str, Cover]) -> CollectionPlan:
    """Compare one collection with the catalog (reads ids and metadata, never the vectors)."""
    stored = collection.metadatas()
    changed = {i for i, metadata in stored.items() if i in covers and metadata != covers[i].metadata}
    return CollectionPlan(collection=collection, new=set(covers) - set(stored), gone=set(stored) - set(covers),
                          changed=changed, stored=len(stored))
