"""Indexing helpers shared by the indexer tests and the crash-recovery loops: a generated
catalogued workspace and one-call index / read-back (the fake embedder lives in fakes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coverlens.catalog import distinct_covers, load_catalog, run_catalog
from coverlens.indexer import index_covers
from coverlens.sample_library import make_sample_library
from coverlens.store import CoverCollection, CoverStore
from coverlens.workspace import Workspace
from fakes import FakeEmbedder

__all__ = ["FakeEmbedder", "catalog_ids", "index", "make_workspace", "stored"]


def make_workspace(root: Path, genres: int = 3, per_genre: int = 8) -> Workspace:
    make_sample_library(root / "lib", genres=genres, per_genre=per_genre, size=40, seed=1)
    workspace = Workspace(root / "ws")
    run_catalog(workspace, root / "lib")
    return workspace


def catalog_ids(workspace: Workspace) -> set[str]:
    return set(distinct_covers(load_catalog(workspace))["id"])


def index(workspace: Workspace, *embedders: Any, url: str | None = None, **kwargs: Any):
    with CoverStore.open(workspace, url=url, writer=True) as store:
        return index_covers(workspace, store, list(embedders), **kwargs)


def stored(workspace: Workspace, embedder: Any, url: str | None = None) -> CoverCollection:
    store = CoverStore.open(workspace, url=url)
    return store.collection_for(embedder.name, embedder.identity)
