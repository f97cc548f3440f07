"""Tests for coverlens.store: collections tied to a model identity, batches, queries, the writer lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coverlens.errors import BusyError, StoreError
from coverlens.records import Hit
from coverlens.store import CollectionInfo, CoverStore
from coverlens.store.lock import LOCK_NAME
from coverlens.workspace import Workspace

IDENTITY = {"kind": "fake", "model": "tiny-a", "sha256": "a" * 64}
OTHER = {"kind": "fake", "model": "tiny-b", "sha256": "b" * 64}


def unit_vectors(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def metadata(i: int) -> dict:
    return {"path": f"g{i % 3}/c{i:03d}.jpg", "genre": f"g{i % 3}", "genres": f"g{i % 3}",
            "split": "test" if i % 5 == 0 else "train", "width": np.int64(32), "height": 48}


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws").ensure()


@pytest.fixture
def filled(workspace: Workspace):
    """A writer store with one collection of 30 covers."""
    store = CoverStore.open(workspace, writer=True)
    collection = store.collection_for("fake", IDENTITY, create=True)
    ids = [f"id{i:03d}" for i in range(30)]
    vectors = unit_vectors(30)
    collection.upsert(ids, vectors, [metadata(i) for i in range(30)])
    yield store, collection, ids, vectors
    store.close()


@pytest.mark.filterwarnings("ignore:legacy embedding function config:DeprecationWarning")  # chromadb's own
def test_collection_created_with_cosine_space_and_identity(filled) -> None:
    store, collection, ids, _ = filled
    assert collection.name == "covers-fake"
    assert collection.count() == 30
    assert collection.ids() == set(ids)
    raw = store.client.get_collection("covers-fake", embedding_function=None)
    assert raw.configuration["hnsw"]["space"] == "cosine"
    [info] = store.list_collections()
    assert info.incomplete and "has not finished" in info.incomplete  # born incomplete, until a run ends
    assert (info.name, info.embedder, info.identity, info.count) == ("covers-fake", "fake", IDENTITY, 30)
    assert not collection.is_complete and store.incomplete() == {"covers-fake": info.incomplete}
    collection.mark_complete()
    [info] = store.list_collections()
    assert info == CollectionInfo("covers-fake", "fake", IDENTITY, 30, None, collection.last_changed)
    assert collection.is_complete and collection.incomplete_reason is None and info.changed
    raw = store.client.get_collection("covers-fake", embedding_function=None)  # identity kept by the merge
    assert raw.configuration["hnsw"]["space"] == "cosine" and raw.metadata["embedder"] == "fake"


def test_fetch_all_and_by_id_in_asked_order(filled) -> None:
    _, collection, ids, vectors = filled
    collection.max_batch = 7  # force several pages
    everything = collection.fetch()
    assert sorted(everything.ids) == ids
    assert everything.vectors.dtype == np.float32 and everything.vectors.shape == (30, 8)
    order = {i: n for n, i in enumerate(everything.ids)}
    np.testing.assert_allclose(everything.vectors[order["id004"]], vectors[4], atol=1e-6)
    assert everything.metadatas[order["id004"]]["path"] == "g1/c004.jpg"

    asked = ["id020", "id003", "missing", "id011"]
    some = collection.fetch(asked)
    assert some.ids == ["id020", "id003", "id011"]
    np.testing.assert_allclose(some.vectors, vectors[[20, 3, 11]], atol=1e-6)
    assert [m["genre"] for m in some.metadatas] == ["g2", "g0", "g2"]
    assert collection.fetch([]).ids == []


def test_query_similarity_exclusion_and_filter(filled) -> None:
    _, collection, ids, vectors = filled
    [hits] = collection.query(vectors[5:6], k=3)
    assert isinstance(hits[0], Hit)
    assert hits[0].id == "id005" and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert (hits[0].path, hits[0].genre, hits[0].split) == ("g2/c005.jpg", "g2", "test")
    assert hits[0].similarity >= hits[1].similarity >= hits[2].similarity
    exact = vectors @ vectors[5]
    assert hits[1].similarity == pytest.approx(np.sort(exact)[-2], abs=1e-5)

    [without] = collection.query(vectors[5], k=3, exclude_ids={"id005", hits[1].id})
    assert len(without) == 3 and {"id005", hits[1].id}.isdisjoint(h.id for h in without)
    assert without[0].id == hits[2].id

    filtered = collection.query(vectors[:4], k=5, where={"split": "train"})
    assert len(filtered) == 4 and all(len(h) == 5 and all(x.split == "train" for x in h) for h in filtered)
    assert len(collection.query(vectors[0], k=100)[0]) == 30  # never more than stored


def test_upsert_in_batches_replaces_and_rejects_duplicates(filled) -> None:
    _, collection, ids, _ = filled
    collection.max_batch = 4
    fresh = unit_vectors(10, seed=9)
    collection.upsert(ids[:10], fresh, [metadata(i) | {"split": "moved"} for i in range(10)])
    assert collection.count() == 30
    back = collection.fetch(ids[:10])
    np.testing.assert_allclose(back.vectors, fresh, atol=1e-6)
    assert {m["split"] for m in back.metadatas} == {"moved"}
    with pytest.raises(StoreError, match="duplicate ids"):
        collection.upsert(["x", "x"], unit_vectors(2), [metadata(0), metadata(1)])
    collection.update_metadata(ids[:2], [metadata(0) | {"genre": "new"}, metadata(1) | {"genre": "new"}])
    assert collection.metadatas()[ids[1]]["genre"] == "new"
    collection.delete(ids[:9])
    assert collection.count() == 21 and not collection.ids() & set(ids[:9])


def test_identity_mismatch_refused_and_rebuild(filled) -> None:
    store, _, _, _ = filled
    with pytest.raises(StoreError) as caught:
        store.collection_for("fake", OTHER)
    message = str(caught.value)
    assert "tiny-a" in message and "tiny-b" in message and "coverlens index --rebuild" in message
    assert store.collection_for("fake", dict(reversed(IDENTITY.items()))).count() == 30  # key order is no change
    rebuilt = store.collection_for("fake", OTHER, rebuild=True)
    assert rebuilt.count() == 0 and rebuilt.identity == OTHER
    assert store.list_collections()[0].identity == OTHER


def test_missing_collection_and_store(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store in"):
        CoverStore.open(Workspace(tmp_path / "empty"))
    with CoverStore.open(workspace, writer=True) as store:
        with pytest.raises(StoreError, match="no index for fake in .*; run `coverlens index`"):
            store.collection_for("fake", IDENTITY)
        with pytest.raises(StoreError, match="cannot name a Chroma collection"):
            store.collection_for("fine tuned/v2", IDENTITY, create=True)
        assert store.list_collections() == []


def test_vectors_persist_for_readers(filled, workspace: Workspace) -> None:
    store, _, ids, vectors = filled
    store.close()
    with CoverStore.open(workspace) as reader:
        assert not reader.writer
        collection = reader.collection_for("fake", IDENTITY)
        assert collection.ids() == set(ids)
        assert collection.query(vectors[7], k=1)[0][0].id == "id007"


HOLD_LOCK = """
import sys, time
from coverlens.store import CoverStore
from coverlens.workspace import Workspace
store = CoverStore.open(Workspace.resolve(sys.argv[1]), writer=True)
print("locked", flush=True)
time.sleep(120)
"""


def test_second_writer_refused_until_first_dies(workspace: Workspace) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(workspace.root)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(BusyError) as caught:
            CoverStore.open(workspace, writer=True)
        assert f"is busy: index, pid {holder.pid}, since 20" in str(caught.value)
        assert "--chroma-url" in str(caught.value) and caught.value.exit_code == 9
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (workspace.store_dir / LOCK_NAME).exists()  # a stale file, but no stale lock: the kernel dropped it
    with CoverStore.open(workspace, writer=True) as store:
        assert store.writer


def test_close_releases_the_lock_in_process(workspace: Workspace) -> None:
    first = CoverStore.open(workspace, writer=True)
    with pytest.raises(BusyError, match="is busy: index, pid"):
        CoverStore.open(workspace, writer=True)
    first.close()
    first.close()  # idempotent
    with CoverStore.open(workspace, writer=True) as second:
        second.collection_for("fake", IDENTITY, create=True)
    with pytest.raises(StoreError, match="closed"):
        second.list_collections()


def test_bad_server_url_is_a_clear_error(workspace: Workspace) -> None:
    with pytest.raises(StoreError, match="not of the form"):
        CoverStore.open(workspace, url="ftp://x")
    with pytest.raises(StoreError, match="cannot reach the Chroma server at http://127.0.0.1:9"):
        CoverStore.open(workspace, url="http://127.0.0.1:9")


def test_empty_collection_answers_empty(workspace: Workspace) -> None:
    with CoverStore.open(workspace, writer=True) as store:
        collection = store.collection_for("fake", IDENTITY, create=True)
        assert collection.query(unit_vectors(2), k=5) == [[], []]
        assert collection.fetch().ids == [] and collection.ids() == set() and collection.count() == 0
