"""Shared fixtures: generated cover libraries and workspaces (tests never read ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace


@pytest.fixture
def small_library(tmp_path: Path) -> Path:
    """3 genres x 10 generated 48 px covers."""
    root = tmp_path / "library"
    make_sample_library(root, genres=3, per_genre=10, size=48, seed=1)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "workspace")
