"""Generated, catalogued libraries for tests: the one way tests build a workspace to work on."""

from __future__ import annotations

from pathlib import Path

from coverlens.catalog import run_catalog
from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace


def catalogued_library(root: Path, *, genres: int, per_genre: int, size: int = 48, seed: int = 0,
                       workspace_name: str = "ws") -> Workspace:
    """Draw a sample library under root/library and catalog it into root/<workspace_name>."""
    make_sample_library(root / "library", genres=genres, per_genre=per_genre, size=size, seed=seed)
    workspace = Workspace(root / workspace_name)
    run_catalog(workspace, root / "library")
    return workspace
