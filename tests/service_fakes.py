"""A real service (real catalog, embedded Chroma) over a generated library whose "finetuned"
embedder is a `FakeEmbedder` and whose CLIP is unavailable: fast, no model file needed. Shared by
the tests of index-follows-the-library and of incomplete stores."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from coverlens.errors import WeightsError
from coverlens.registry import BuildContext
from coverlens.service import CoverlensService
from coverlens.workspace import Workspace
from fakes import FakeEmbedder, fake_registry


def _no_clip(ctx: BuildContext) -> None:
    raise WeightsError("no CLIP weights in this test")


REGISTRY = fake_registry({"finetuned": lambda ctx: FakeEmbedder("finetuned"), "clip": _no_clip})


def fake_service(workspace: Workspace, **kwargs: Any) -> CoverlensService:
    return CoverlensService(workspace, registry=REGISTRY, **kwargs)


def use_fake_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CLI command in this process builds `fake_service`."""
    from coverlens.cli import common

    monkeypatch.setattr(common, "SERVICE_FACTORY", fake_service)


def library_state(root: Path) -> dict[str, tuple[str, str]]:
    """What the store must hold for the library as it is on disk: md5 -> (path, genre folder)."""
    return {hashlib.md5(p.read_bytes()).hexdigest(): (p.relative_to(root).as_posix(), p.parent.name)
            for p in sorted(root.glob("*/*.jpg"))}


def store_state(workspace: Workspace) -> dict[str, tuple[str, str]]:
    service = fake_service(workspace)
    try:
        stored = service.stored_collection("finetuned").fetch()
    finally:
        service.close()
    return {i: (m["path"], m["genre"]) for i, m in zip(stored.ids, stored.metadatas, strict=True)}
