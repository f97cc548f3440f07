"""Shared fixtures: generated cover libraries and workspaces (tests never read ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace
from libraries import catalogued_library


@pytest.fixture(autouse=True)
def no_text_stage_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """`index` reads the covers' words (OCR) by default; tests ask for it (`--text`, `text=True`) where
    they look at the words, so the others do not pay for OCR processes."""
    monkeypatch.setenv("COVERLENS_TEXT", "0")


@pytest.fixture
def small_library(tmp_path: Path) -> Path:
    """3 genres x 10 generated 48 px covers."""
    root = tmp_path / "library"
    make_sample_library(root, genres=3, per_genre=10, size=48, seed=1)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "workspace")


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A catalogued generated library with a tiny trained classifier (random-init mobilenet_v2, 32 px).

    Shared by the tests that need a real model file but not a good one; do not modify it.
    """
    from coverlens.classifier import TrainConfig, train_classifier

    workspace = catalogued_library(tmp_path_factory.mktemp("trained"), genres=3, per_genre=12, seed=5)
    config = TrainConfig(image_size=32, epochs=1, frozen_epochs=0, batch_size=8, pretrained=False)
    train_classifier(workspace, config, progress=False)
    return workspace


@pytest.fixture
def copied_workspace(trained_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the trained workspace (catalog + model), safe to index into and change."""
    import shutil

    target = tmp_path / "ws"
    shutil.copytree(trained_workspace.root, target, ignore=shutil.ignore_patterns("store", "clusters", "reports"))
    return Workspace(target)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the reliability loops ran (trials, requests, what was found), and keep it on disk."""
    import stress

    lines = stress.summary_lines()
    if lines:
        terminalreporter.section("reliability")
        for line in lines:
            terminalreporter.write_line(line)
        stress.write_report()
