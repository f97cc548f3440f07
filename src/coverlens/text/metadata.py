"""The library's metadata text per cover (album and artist, book title and authors), for the text store
and the text genre model.

The catalog holds metadata per library row; the text store and the models work per cover (content
id). A cover filed in several places (the same picture on two albums) gets the distinct metadata
texts of all its rows, one per line, in catalog order. Only the `title` and `creator` columns are
read (`coverlens.sources.metadata_text`): genre tags never enter this text, so the text model
cannot read its answer from them.

Consistency: the catalog is the truth. `sync_metadata` makes the store's metadata rows equal to
the catalog's (added, changed and removed covers) on every text stage; `find` also checks each
metadata hit against the current catalog, so a renamed or deleted album never shows a stale hit,
even before the next `index`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from coverlens.text.store import TextStore
    from coverlens.workspace import Workspace

METADATA_ENV = "COVERLENS_METADATA_TEXT"  # 0: the text model is trained on the words alone
_CACHE: dict[str, tuple[int, dict[str, str]]] = {}  # workspace root -> (catalog mtime, id -> text)
_LOCK = threading.Lock()


def metadata_wanted() -> bool:
    """Whether `coverlens train` gives the text model the metadata text: yes, unless $COVERLENS_METADATA_TEXT
    says 0/no/off/false (benchmarks/bench_metadata_text.py: it helps where the metadata is about the
    album, and hurts where it says nothing about the genre)."""
    return os.environ.get(METADATA_ENV, "").strip().lower() not in ("0", "no", "off", "false")


def metadata_by_cover(rows: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """id -> the distinct metadata texts of the readable rows holding that picture ("" texts left out)."""
    from coverlens.sources import metadata_text

    found: dict[str, list[str]] = {}
    for row in rows:
        if row.get("status") != "ok" or not row.get("id"):
            continue
        text = metadata_text(row)
        texts = found.setdefault(str(row["id"]), [])
        if text and text not in texts:
            texts.append(text)
    return {cid: "\n".join(texts) for cid, texts in found.items() if texts}


def metadata_of_catalog(frame: pd.DataFrame) -> dict[str, str]:
    """`metadata_by_cover` of a loaded catalog's rows."""
    return metadata_by_cover(frame[["id", "status", "title", "creator"]].to_dict("records"))


def catalog_metadata(workspace: Workspace) -> dict[str, str]:
    """The metadata text of every catalogued cover that has some; re-read when the catalog file changes."""
    from coverlens.catalog import load_catalog

    path = workspace.catalog_file
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    key = str(workspace.root)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    texts = metadata_of_catalog(load_catalog(workspace))
    with _LOCK:
        _CACHE[key] = (stamp, texts)
    return texts


def sync_metadata(store: TextStore, texts: Mapping[str, str]) -> tuple[int, int]:
    """Make the store's metadata rows equal `texts`; returns (written, removed)."""
    stored = store.metadata()
    changed = {cid: text for cid, text in texts.items() if stored.get(cid) != text}
    gone = [cid for cid in stored if cid not in texts]
    store.put_metadata(changed, remove=gone)
    return len(changed), len(gone)


def with_metadata(words: str, metadata: str) -> str:
    """The text model's input for one cover: the words read on it, then its metadata text."""
    return "\n".join(part for part in (words, metadata) if part)


def combine(ids: Sequence[str | None], words: Sequence[str], metadata: Mapping[str, str]) -> list[str]:
    """`with_metadata` for each cover; an id of None (not a library cover) has no metadata."""
    return [with_metadata(text, metadata.get(cid, "") if cid else "") for cid, text in zip(ids, words, strict=True)]
