"""The test doubles, in one place: an embedder, a store and its collections, a registry over fakes.

They follow the real interfaces (`coverlens.embedders.Embedder`, `coverlens.store`'s records and
methods) and are handed in through constructors: the service takes a registry and a store opener,
and the CLI builds its service through `coverlens.cli.common.SERVICE_FACTORY`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from PIL import Image

from coverlens.embedders import l2_normalise
from coverlens.errors import StoreError
from coverlens.records import Hit
from coverlens.registry import REGISTRY, BuildContext, Registry, replace
from coverlens.store import CollectionInfo, StoredVectors


class FakeEmbedder:
    """Deterministic: colour statistics and a coarse grey thumbnail, randomly projected; or, made
    with `pointing_at(vector)`, every image embedded as that one vector. `calls`: batch sizes."""

    def __init__(self, name: str = "fake", dimension: int = 8, seed: int = 0, delay: float = 0.0,
                 announce: bool = False, *, identity: dict[str, Any] | None = None) -> None:
        self.name, self.dimension, self.seed = name, dimension, seed
        self.projection = np.random.default_rng(seed).normal(size=(22, dimension)).astype(np.float32)
        self.delay, self.announce = delay, announce
        self.vector: np.ndarray | None = None
        self._identity = identity
        self.calls: list[int] = []

    @classmethod
    def pointing_at(cls, vector: np.ndarray, name: str = "finetuned",
                    identity: dict[str, Any] | None = None) -> FakeEmbedder:
        fake = cls(name, identity=identity or {"model": "fake"})
        fake.vector = l2_normalise(np.asarray(vector).reshape(1, -1))
        fake.dimension = fake.vector.shape[1]
        return fake

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self._identity or {"kind": "fake", "seed": self.seed, "dimension": self.dimension})

    def features(self, image: Image.Image) -> np.ndarray:
        pixels = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32) / 255.0
        grey = np.asarray(image.convert("L").resize((4, 4)), dtype=np.float32).ravel() / 255.0
        return np.concatenate([pixels.mean(axis=(0, 1)), pixels.std(axis=(0, 1)), grey])

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls.append(len(images))
        if self.vector is not None:
            return np.repeat(self.vector, len(images), axis=0)
        time.sleep(self.delay)
        vectors = l2_normalise(np.stack([self.features(i) for i in images]) @ self.projection)
        if self.announce:
            print(f"embedded {len(images)}", flush=True)
        return vectors


class FakeCollection:
    """Exact cosine search over a few vectors, duck-typed like `coverlens.store.CoverCollection`."""

    def __init__(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]],
                 embedder: str = "finetuned", identity: dict[str, Any] | None = None) -> None:
        self.name, self.embedder = f"covers-{embedder}", embedder
        self.identity = identity or {"model": "fake"}
        self._ids, self._vectors, self._meta = list(ids), l2_normalise(vectors), metadatas
        self.queries: list[tuple[int, Any]] = []
        self.incomplete_reason: str | None = None  # set it to play a killed index run

    @property
    def is_complete(self) -> bool:
        return self.incomplete_reason is None

    def count(self) -> int:
        return len(self._ids)

    def ids(self) -> list[str]:
        return list(self._ids)

    def query(self, vectors: np.ndarray, k: int, *, where: dict[str, Any] | None = None,
              exclude_ids: list[str] | None = None) -> list[list[Hit]]:
        self.queries.append((k, where))
        allowed = [i for i, m in enumerate(self._meta)
                   if all(m.get(key) == value for key, value in (where or {}).items())]
        results = []
        for vector in l2_normalise(vectors):
            sims = self._vectors[allowed] @ vector
            order = np.argsort(-sims, kind="stable")[:k]
            results.append([Hit(id=self._ids[allowed[j]], similarity=float(sims[j]),
                                path=self._meta[allowed[j]]["path"], genre=self._meta[allowed[j]]["genre"],
                                split=self._meta[allowed[j]]["split"]) for j in order])
        return results

    def fetch(self, ids: list[str] | None = None) -> StoredVectors:
        return StoredVectors(self.ids(), self._vectors.copy(), [dict(m) for m in self._meta])


class FakeStore:
    def __init__(self, *collections: FakeCollection) -> None:
        self.collections = list(collections)
        self.closed = False

    def __enter__(self) -> FakeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True

    def list_collections(self) -> list[CollectionInfo]:
        return [CollectionInfo(c.name, c.embedder, c.identity, c.count(), incomplete=c.incomplete_reason)
                for c in self.collections]

    def incomplete(self) -> dict[str, str]:
        return {c.name: c.incomplete_reason for c in self.collections if c.incomplete_reason}

    def collection_for(self, embedder_name: str, identity: dict[str, Any], **_: Any) -> FakeCollection:
        for c in self.collections:
            if c.embedder == embedder_name and c.identity == identity:
                return c
        raise StoreError(f"no collection for {embedder_name}")


def fake_registry(builds: dict[str, Callable[[BuildContext], Any]], base: Registry = REGISTRY) -> Registry:
    """`base` with the named embedders built by `builds` (no check: they can always be had)."""
    registry = base
    for name, build in builds.items():
        registry = registry.with_embedder(replace(base.embedder(name), build=build, check=lambda ctx: None))
    return registry


def install_fake_store(monkeypatch: pytest.MonkeyPatch, store: FakeStore, **service_kwargs: Any) -> None:
    """Commands build their service over `store` (and `service_kwargs`, e.g. a registry), through
    the service's constructor."""
    from coverlens.cli import common
    from coverlens.service import CoverlensService

    def factory(workspace: Any, **kwargs: Any) -> CoverlensService:
        return CoverlensService(workspace, open_store=lambda *a, **k: store, **service_kwargs, **kwargs)

    monkeypatch.setattr(common, "SERVICE_FACTORY", factory)
