"""The covers' OCR text for clustering, read from the workspace's text store when there is one.

The text stage (`coverlens.text`) keeps `<workspace>/text/text.db`. The service reads it here and
hands the clustering job a mapping `cover id -> text`; without that stage installed, or before it
has read any cover, there is no text: clusters still form in the image space and carry no words.
`coverlens.text` is imported only when the database exists, so clustering never depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coverlens.workspace import Workspace


def text_db(workspace: Workspace) -> Path:
    return workspace.root / "text" / "text.db"


def open_text_store(workspace: Workspace) -> Any | None:
    """The workspace's text store, read-only (a context manager with `.texts(ids)`), or None when
    the text stage is not installed or has not run here."""
    if not text_db(workspace).exists():
        return None
    try:
        from coverlens.text.stage import text_store_for
    except ImportError:  # this build has no text stage: cluster without words
        return None
    return text_store_for(workspace.root, readonly=True)


def workspace_texts(workspace: Workspace, ids: Sequence[str]) -> dict[str, str] | None:
    """cover id -> OCR text of those of `ids` with any text, or None when there is none to read."""
    store = open_text_store(workspace)
    if store is None:
        return None
    with store:
        found = {cover: text for cover, text in zip(ids, store.texts(list(ids)), strict=True) if text}
    return found or None
