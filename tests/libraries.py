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


def trained_library(root: Path, trained: Workspace, *, genres: int, per_genre: int, seed: int = 0) -> Workspace:
    """A library of its own under root/library (safe to change), catalogued, with the model of the
    session's `trained_workspace` copied in: the real fine-tuned embedder over covers a test may
    delete and add."""
    import shutil

    workspace = catalogued_library(root, genres=genres, per_genre=per_genre, seed=seed)
    shutil.copytree(trained.model_dir, workspace.model_dir)
    return workspace


def spread_projection(workspace: Workspace, dimension: int = 8) -> None:
    """Save a small PCA projection for the workspace's fine-tuned embedder, where `index` keeps its own.

    The tiny random-init model's vectors all point nearly one way (similarities 0.9999 and up), so
    which covers are "nearest" would be decided by rounding. A projection fitted on the train split
    centres them: neighbours differ clearly. Every process (app, `index`, `similar`) loads it, as it
    would a projection `index` fitted on a larger library.
    """
    from coverlens.classifier import load_classifier
    from coverlens.embedders.backbone import FinetunedBackboneEmbedder
    from coverlens.embedders.projection import fit_projection
    from coverlens.embedders.projection_file import projection_file, train_sample, train_vectors

    inner = FinetunedBackboneEmbedder(load_classifier(workspace))
    vectors = train_vectors(workspace, inner, train_sample(workspace))
    projection_file(workspace, inner).write_bytes(fit_projection(vectors, dimension).to_bytes())
