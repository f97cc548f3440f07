"""Tests for coverlens.indexer: incremental, resumable indexing of a generated library."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from coverlens.catalog import distinct_covers, load_catalog, run_catalog
from coverlens.cli import main
from coverlens.embedders import l2_normalise
from coverlens.errors import ModelError, StoreError, WeightsError
from coverlens.indexer import choose_embedders
from coverlens.registry import REGISTRY, BuildContext, Kept, Registry
from coverlens.store import CoverCollection
from coverlens.workspace import Workspace
from fakes import FakeEmbedder, fake_registry
from indexing import catalog_ids, index, make_workspace, stored
from local_servers import chroma_server


class PreparingFake(FakeEmbedder):
    """The same vectors, with the preprocessing split off (the indexer runs it in its reader thread)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prepare_threads: set[str] = set()

    def prepare(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.prepare_threads.add(threading.current_thread().name)
        return np.stack([self.features(i) for i in images])

    def embed_prepared(self, features: np.ndarray) -> np.ndarray:
        self.calls.append(len(features))
        return l2_normalise(features @ self.projection)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


def test_index_then_second_run_does_nothing(workspace: Workspace) -> None:
    fake = FakeEmbedder()
    seen: list[int] = []
    report = index(workspace, fake, batch_size=5, progress=lambda items, total: (seen.append(total), items)[1])
    assert seen == [24]
    assert report.covers == 24 and report.embedded == 24 and report.failures == []
    assert sum(fake.calls) == 24 and max(fake.calls) <= 5
    assert {"plan", "wait for read", "read + prepare (ahead)", "embed fake", "write fake (behind)",
            "wait for write"} <= set(report.timings)
    collection = stored(workspace, fake)
    assert collection.ids() == catalog_ids(workspace)
    first = distinct_covers(load_catalog(workspace)).iloc[0]
    got = collection.fetch([first["id"]])
    assert got.metadatas[0] == {"path": first["path"], "source": "file", "genre": first["genre"],
                                "genres": first["genres"], "split": first["split"], "width": 40, "height": 40}
    lib = workspace.root.parent / "lib"
    np.testing.assert_allclose(got.vectors[0], fake.embed([Image.open(lib / first["path"])])[0], atol=1e-6)

    fake.calls.clear()
    again = index(workspace, fake)
    assert again.embedded == 0 and fake.calls == []
    assert [(c.added, c.deleted, c.updated, c.stored_after) for c in again.collections] == [(0, 0, 0, 24)]
    assert any(line.startswith("covers-fake: 24 covers") for line in again.summary_lines())


def test_two_embedders_fill_their_own_collections(workspace: Workspace) -> None:
    a, b = FakeEmbedder("alpha", 8, seed=1), FakeEmbedder("beta", 5, seed=2)
    index(workspace, a, batch_size=7)
    report = index(workspace, a, b, batch_size=7)  # beta is new: only beta embeds
    assert [c.added for c in report.collections] == [0, 24] and a.calls == [7, 7, 7, 3]
    assert stored(workspace, b).ids() == stored(workspace, a).ids() == catalog_ids(workspace)


def test_preprocessing_runs_ahead_in_the_reader_thread(workspace: Workspace) -> None:
    preparing = PreparingFake()
    report = index(workspace, preparing, batch_size=5)
    assert report.embedded == 24 and sum(preparing.calls) == 24
    assert preparing.prepare_threads == {"coverlens-read-ahead"}
    stored_vectors = stored(workspace, preparing).fetch()
    lib = workspace.root.parent / "lib"
    paths = [m["path"] for m in stored_vectors.metadatas]
    expected = FakeEmbedder().embed([Image.open(lib / p) for p in paths])
    np.testing.assert_allclose(stored_vectors.vectors, expected, atol=1e-6)


def test_removed_and_moved_covers(workspace: Workspace) -> None:
    fake = FakeEmbedder()
    index(workspace, fake)
    lib = workspace.root.parent / "lib"
    genres = sorted(p.name for p in lib.iterdir())
    victims = sorted((lib / genres[0]).iterdir())[:2]
    for victim in victims:
        victim.unlink()
    moved = sorted((lib / genres[1]).iterdir())[0]
    shutil.move(moved, lib / genres[2] / moved.name)
    run_catalog(workspace)
    fake.calls.clear()
    report = index(workspace, fake)
    [c] = report.collections
    assert (c.added, c.deleted, c.updated, c.stored_after) == (0, 2, 1, 22) and fake.calls == []
    collection = stored(workspace, fake)
    assert collection.ids() == catalog_ids(workspace)
    hit = [m for m in collection.metadatas().values() if m["path"] == f"{genres[2]}/{moved.name}"]
    assert len(hit) == 1 and hit[0]["genre"] == genres[2]


def test_unreadable_at_index_time_is_reported_and_skipped(workspace: Workspace) -> None:
    lib = workspace.root.parent / "lib"
    broken = sorted(lib.rglob("*.jpg"))[3]
    broken.write_bytes(b"not a jpeg any more")  # changed after cataloguing
    report = index(workspace, FakeEmbedder(), batch_size=4)
    assert report.embedded == 23 and len(report.failures) == 1
    path, reason = report.failures[0]
    assert path == broken.relative_to(lib).as_posix() and "not an image" in reason
    assert any("skipped unreadable cover" in line for line in report.summary_lines())


def test_model_change_is_refused_then_rebuilt(workspace: Workspace) -> None:
    index(workspace, FakeEmbedder(seed=1))
    with pytest.raises(StoreError, match="re-run `coverlens index --rebuild`"):
        index(workspace, FakeEmbedder(seed=2))
    fresh = FakeEmbedder(seed=2)
    report = index(workspace, fresh, rebuild=True)
    assert report.embedded == 24 and sum(fresh.calls) == 24
    assert stored(workspace, fresh).identity == fresh.identity


def test_failure_in_the_write_stage_then_resume(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    real_upsert = CoverCollection.upsert
    writes: list[int] = []

    def failing_upsert(self: CoverCollection, ids: Any, vectors: Any, metadatas: Any) -> None:
        if len(writes) == 3:
            raise RuntimeError("disk full (simulated)")
        writes.append(len(ids))
        real_upsert(self, ids, vectors, metadatas)

    monkeypatch.setattr(CoverCollection, "upsert", failing_upsert)
    fake = FakeEmbedder()
    with pytest.raises(RuntimeError, match="simulated"):
        index(workspace, fake, batch_size=4)
    assert stored(workspace, fake).count() == 12
    monkeypatch.setattr(CoverCollection, "upsert", real_upsert)
    report = index(workspace, fake, batch_size=4)
    assert report.embedded == 12
    collection = stored(workspace, fake)
    assert collection.count() == 24 and collection.ids() == catalog_ids(workspace)


class FailingEmbedder(FakeEmbedder):
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if len(self.calls) == 3:
            raise RuntimeError("out of memory (simulated)")
        return super().embed(images)


def test_failure_in_the_embed_stage_keeps_what_was_embedded(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError, match="simulated"):
        index(workspace, FailingEmbedder(), batch_size=5)
    fake = FakeEmbedder()
    assert stored(workspace, fake).count() == 15  # the writes behind the model were finished
    assert index(workspace, fake).embedded == 9
    assert stored(workspace, fake).ids() == catalog_ids(workspace)


def kept_over(workspace: Workspace, registry: Registry = REGISTRY) -> Kept:
    return Kept(registry, BuildContext(workspace, lambda: pytest.fail("no classifier should load here")))


def test_choose_embedders_says_what_is_missing(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from coverlens.embedders import clip

    offline = clip.ClipLoad(None, "huggingface.co is unreachable")
    monkeypatch.setattr(clip, "load_clip_embedder", lambda *a, **k: offline)
    kept = kept_over(workspace)
    with pytest.raises(ModelError, match="no fine-tuned model; run `coverlens train`"):
        choose_embedders(REGISTRY, "finetuned", kept.embedder)
    with pytest.raises(WeightsError, match="CLIP comparator unavailable: huggingface.co is unreachable"):
        choose_embedders(REGISTRY, "clip", kept.embedder)
    with pytest.raises(ModelError, match="nothing to index with: no fine-tuned model.*CLIP comparator"):
        choose_embedders(REGISTRY, "all", kept.embedder)

    fake_clip = FakeEmbedder("clip")
    monkeypatch.setattr(clip, "load_clip_embedder", lambda *a, **k: clip.ClipLoad(fake_clip, None))
    choice = choose_embedders(REGISTRY, "all", kept_over(workspace).embedder)
    assert choice.embedders == [fake_clip]
    assert choice.notes == ["no fine-tuned model; run `coverlens train` (indexing clip only)"]


def test_choose_embedders_notes_a_failed_build(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from coverlens.embedders import clip

    finetuned = FakeEmbedder("finetuned")
    monkeypatch.setattr(clip, "load_clip_embedder", lambda *a, **k: clip.ClipLoad(None, "offline"))
    kept = kept_over(workspace, fake_registry({"finetuned": lambda ctx: finetuned}))
    choice = choose_embedders(kept.registry, "all", kept.embedder)
    assert choice.embedders == [finetuned]
    assert choice.notes == ["CLIP comparator unavailable: offline; continuing without it (indexing finetuned only)"]
    with pytest.raises(ValueError, match="embedder must be one of all, finetuned, clip"):
        choose_embedders(kept.registry, "imagenet", kept.embedder)  # evaluated, never indexed


def test_index_with_the_tiny_clip_model(workspace: Workspace, tmp_path: Path) -> None:
    from coverlens.embedders.clip import TINY_TEST_CONFIG, TINY_TEST_MODEL, ClipEmbedder, register_model_config

    register_model_config(TINY_TEST_MODEL, TINY_TEST_CONFIG, tmp_path / "configs")
    embedder = ClipEmbedder(TINY_TEST_MODEL, None, random_init=True)
    report = index(workspace, embedder, FakeEmbedder(), batch_size=10)
    assert [c.added for c in report.collections] == [24, 24]
    collection = stored(workspace, embedder)
    assert collection.name == "covers-clip" and collection.ids() == catalog_ids(workspace)
    some = collection.fetch()
    lib = workspace.root.parent / "lib"
    expected = embedder.embed([Image.open(lib / m["path"]).convert("RGB") for m in some.metadatas])
    np.testing.assert_allclose(some.vectors, expected, atol=1e-5)  # prepared ahead == embedded directly
    [hits] = collection.query(some.vectors[0], k=3, exclude_ids={some.ids[0]})
    assert len(hits) == 3 and some.ids[0] not in {h.id for h in hits}


def test_cli_index(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from coverlens.cli import common
    from coverlens.service import CoverlensService

    fake = FakeEmbedder("clip")  # the fine-tuned embedder stays real: no model in this workspace
    registry = fake_registry({"clip": lambda ctx: fake})
    monkeypatch.setattr(common, "SERVICE_FACTORY", lambda ws, **kw: CoverlensService(ws, registry=registry, **kw))
    assert main(["index", "-w", str(workspace.root), "--batch-size", "5"]) == 0
    out, err = capsys.readouterr()
    assert "no fine-tuned model" in err and "covers-clip: 24 covers (+24 embedded" in out and "stages:" in out
    assert main(["index", "-w", str(workspace.root)]) == 0
    assert "covers-clip: 24 covers (+0 embedded" in capsys.readouterr().out


def test_server_mode_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    with chroma_server(tmp_path / "server-data", workspace) as url:
        fake = FakeEmbedder()
        report = index(workspace, fake, url=url, batch_size=8)
        assert report.embedded == 24
        assert not workspace.store_dir.exists()  # nothing embedded in the workspace
        collection = stored(workspace, fake, url=url)
        assert collection.ids() == catalog_ids(workspace)
        some = collection.fetch()
        [hits] = collection.query(some.vectors[3], k=2)
        assert hits[0].id == some.ids[3] and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
        assert index(workspace, fake, url=url).embedded == 0


def test_index_with_the_real_finetuned_embedder(trained_workspace: Workspace, tmp_path: Path) -> None:
    """The classifier's fine-tuned backbone, through the real factory (a copy: the fixture is shared)."""
    workspace = Workspace(tmp_path / "ws")
    shutil.copytree(trained_workspace.root, workspace.root)
    from coverlens.service import CoverlensService

    embedder = CoverlensService(workspace).embedder("finetuned")
    assert embedder.name == "finetuned"
    report = index(workspace, embedder, batch_size=8)
    assert report.embedded == len(catalog_ids(workspace)) and report.failures == []
    collection = stored(workspace, embedder)
    assert collection.ids() == catalog_ids(workspace) and collection.identity == embedder.identity
    assert index(workspace, embedder).embedded == 0
