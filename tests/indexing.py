"""Indexing helpers shared by the indexer tests and the crash-recovery loops: a deterministic
fake embedder, a generated catalogued workspace, and one-call index / read-back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from coverlens.catalog import distinct_covers, load_catalog, run_catalog
from coverlens.embedders import l2_normalise
from coverlens.indexer import index_covers
from coverlens.sample_library import make_sample_library
from coverlens.store import CoverCollection, CoverStore
from coverlens.workspace import Workspace


class FakeEmbedder:
    """Deterministic: colour statistics and a coarse grey thumbnail, randomly projected."""

    def __init__(self, name: str = "fake", dimension: int = 8, seed: int = 0, delay: float = 0.0,
                 announce: bool = False) -> None:
        self.name, self.dimension, self.seed = name, dimension, seed
        self.projection = np.random.default_rng(seed).normal(size=(22, dimension)).astype(np.float32)
        self.delay, self.announce = delay, announce
        self.calls: list[int] = []

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "fake", "seed": self.seed, "dimension": self.dimension}

    def features(self, image: Image.Image) -> np.ndarray:
        pixels = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32) / 255.0
        grey = np.asarray(image.convert("L").resize((4, 4)), dtype=np.float32).ravel() / 255.0
        return np.concatenate([pixels.mean(axis=(0, 1)), pixels.std(axis=(0, 1)), grey])

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls.append(len(images))
        time.sleep(self.delay)
        vectors = l2_normalise(np.stack([self.features(i) for i in images]) @ self.projection)
        if self.announce:
            print(f"embedded {len(images)}", flush=True)
        return vectors


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
