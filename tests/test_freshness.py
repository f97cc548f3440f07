"""Fresh reads and complete-or-flagged collections.

A reader that keeps a store open (as the app does) must answer from the new state after another
process changed the store, with no restart; a collection an index run has not finished filling
must say so until a run completes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverlens.catalog import library_root, run_catalog
from coverlens.store import CoverStore
from coverlens.store.freshness import read_generation
from coverlens.workspace import Workspace
from indexing import FakeEmbedder, catalog_ids, index, make_workspace

TESTS = Path(__file__).parent

WRITER = """
import sys
sys.path.insert(0, sys.argv[1])
from indexing import FakeEmbedder, index
from coverlens.workspace import Workspace
index(Workspace.resolve(sys.argv[2]), FakeEmbedder(), rebuild=sys.argv[3] == "rebuild")
"""


def run_writer(workspace: Workspace, mode: str) -> None:
    """An index run in another process, as a CLI `coverlens index` beside a running app."""
    done = subprocess.run([sys.executable, "-c", WRITER, str(TESTS), str(workspace.root), mode],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def expected_neighbours(workspace: Workspace, query: np.ndarray, k: int) -> set[str]:
    """The right answer, computed from the library itself: the k catalogued covers nearest the query
    (a set: covers that differ by a pixel tie, and ties may come back in either order)."""
    from coverlens.catalog import distinct_covers, load_catalog

    covers = distinct_covers(load_catalog(workspace))
    root = library_root(workspace)
    vectors = FakeEmbedder().embed([Image.open(root / p) for p in covers["path"]])
    order = np.argsort(-(vectors @ query))[:k]
    return {covers["id"].iloc[i] for i in order}


@pytest.fixture
def library_workspace(tmp_path: Path) -> Workspace:
    workspace = make_workspace(tmp_path, genres=3, per_genre=8)
    index(workspace, FakeEmbedder())
    return workspace


def query_vector(workspace: Workspace) -> np.ndarray:
    first = sorted(library_root(workspace).glob("*/*.jpg"))[0]
    return FakeEmbedder().embed([Image.open(first)])[0]


def test_reader_sees_another_process_add_and_rebuild_without_restart(library_workspace: Workspace,
                                                                     tmp_path: Path) -> None:
    workspace, fake = library_workspace, FakeEmbedder()
    query = query_vector(workspace)
    reader = CoverStore.open(workspace)
    try:
        collection = reader.collection_for(fake.name, fake.identity)
        assert {h.id for h in collection.query(query, k=5)[0]} == expected_neighbours(workspace, query, 5)
        assert collection.is_complete and reader.last_changed() is not None
        changed_before = reader.last_changed()
        before_ids = collection.ids()

        # 1. another process adds covers near the query (an incremental run: upserts into the same
        #    collection, which a cached HNSW segment would never show)
        library = library_root(workspace)
        first = sorted(library.glob("*/*.jpg"))[0]
        for n in range(3):
            image = Image.open(first).convert("RGB")
            image.putpixel((n, 0), (n * 40, 255, 0))
            image.save(first.parent / f"near-{n}.png")
        run_catalog(workspace)
        run_writer(workspace, "add")
        answer = {h.id for h in collection.query(query, k=5)[0]}
        assert answer == expected_neighbours(workspace, query, 5)
        new = catalog_ids(workspace) - before_ids
        assert len(new) == 3 and new <= answer  # the three new covers, unseen by a stale reader
        assert collection.count() == len(catalog_ids(workspace))
        assert reader._shared is not None and reader._shared.resets == 1

        # 2. another process deletes covers and rebuilds the collection from scratch
        for path in sorted(library.glob("*/*.jpg"))[:6]:
            path.unlink()
        run_catalog(workspace)
        run_writer(workspace, "rebuild")
        answer = {h.id for h in collection.query(query, k=5)[0]}
        assert answer == expected_neighbours(workspace, query, 5)
        assert collection.ids() == catalog_ids(workspace) and collection.is_complete
        assert reader.last_changed() >= changed_before
        generation = read_generation(workspace.store_dir)
        assert generation is not None and generation.reason == "index run ended" and generation.pid != os.getpid()
    finally:
        reader.close()


STARTED = """
import sys
sys.path.insert(0, sys.argv[1])
from indexing import FakeEmbedder
from coverlens.store import CoverStore
from coverlens.store.freshness import RUN_STARTED
from coverlens.workspace import Workspace
fake = FakeEmbedder()
with CoverStore.open(Workspace.resolve(sys.argv[2]), writer=True) as store:
    store.collection_for(fake.name, fake.identity).mark_incomplete("a run in another process has not finished")
    store.bump_generation(RUN_STARTED)
"""


def test_a_run_that_only_started_elsewhere_flags_the_collection_without_a_reopen(library_workspace: Workspace) -> None:
    """Another process's run has marked the collection incomplete and written nothing yet: the reader
    sees the flag (its handle is fetched again) and keeps its client (no reload of the vectors); when
    that run ends, the reader reopens and sees what it wrote."""
    workspace, fake = library_workspace, FakeEmbedder()
    query = query_vector(workspace)
    with CoverStore.open(workspace) as reader:
        collection = reader.collection_for(fake.name, fake.identity)
        before = {h.id for h in collection.query(query, k=5)[0]}
        assert collection.is_complete
        subprocess.run([sys.executable, "-c", STARTED, str(TESTS), str(workspace.root)], check=True, timeout=120)
        assert {h.id for h in collection.query(query, k=5)[0]} == before
        assert not collection.is_complete and "has not finished" in (collection.incomplete_reason or "")
        assert reader._shared is not None and reader._shared.resets == 0 and reader._shared.epoch == 1
        run_writer(workspace, "add")  # the run ends (complete again)
        collection.load()  # what a job does when its child process has finished
        assert reader._shared.resets == 1 and collection.is_complete
        assert {h.id for h in collection.query(query, k=5)[0]} == expected_neighbours(workspace, query, 5)


def test_writes_in_the_same_process_need_no_reset(library_workspace: Workspace) -> None:
    """Stores of one directory in one process share one client: they see each other's writes at once."""
    workspace, fake = library_workspace, FakeEmbedder()
    with CoverStore.open(workspace) as reader:
        collection = reader.collection_for(fake.name, fake.identity)
        before = collection.count()
        with CoverStore.open(workspace, writer=True) as writer:
            target = writer.collection_for(fake.name, fake.identity)
            vector = np.zeros((1, fake.dimension), dtype=np.float32)
            vector[0, 0] = 1.0
            target.upsert(["extra"], vector, [{"path": "x.jpg", "genre": "g", "split": "train"}])
            writer.bump_generation("test write")
        assert collection.count() == before + 1
        assert collection.query(vector, k=1)[0][0].id == "extra"
        assert reader._shared is not None and reader._shared.resets == 0


def test_a_query_waits_for_no_reset_when_nothing_changed(library_workspace: Workspace) -> None:
    """The per-query check is one stat: nothing changed, no reopen."""
    workspace, fake = library_workspace, FakeEmbedder()
    with CoverStore.open(workspace) as reader:
        collection = reader.collection_for(fake.name, fake.identity)
        query = query_vector(workspace)
        for _ in range(20):
            collection.query(query, k=3)
        assert reader._shared is not None and reader._shared.resets == 0 and reader._shared.epoch == 0


def test_a_handle_fetched_just_before_a_reset_is_fetched_again(library_workspace: Workspace) -> None:
    """Another thread notices another process's change between fetching a collection's handle and
    wrapping it: the handle belongs to the client just closed and is fetched again on first use
    (stamped with the epoch it was fetched in, it is never taken for a handle of the new client)."""
    workspace, fake = library_workspace, FakeEmbedder()
    with CoverStore.open(workspace) as reader:
        fetch = reader._get

        def fetch_then_reset(name: str) -> object:
            found = fetch(name)
            reader._shared._reopen()  # what a search thread's freshness check does at that instant
            return found

        reader._get = fetch_then_reset
        collection = reader.collection_for(fake.name, fake.identity)
        del reader._get
        assert collection.count() == len(catalog_ids(workspace))  # not the closed client's AttributeError
        assert reader._shared.resets == 1


KILLED_INDEX = """
import sys
sys.path.insert(0, sys.argv[1])
from indexing import FakeEmbedder, index
from coverlens.workspace import Workspace
index(Workspace.resolve(sys.argv[2]), FakeEmbedder(delay=0.3, announce=True), batch_size=4,
      rebuild=sys.argv[3] == "rebuild")
"""


def kill_mid_run(workspace: Workspace, mode: str) -> None:
    """Start an index run in another process and kill -9 it once it has written a batch."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_INDEX, str(TESTS), str(workspace.root), mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("embedded"), child.stderr.read() if child.stderr else ""
        assert child.stdout.readline().startswith("embedded")  # the first batch has been handed to the writer
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


PUBLISHING_INDEX = """
import sys
sys.path.insert(0, sys.argv[1])
import coverlens.store.freshness as freshness
freshness.PUBLISH_EVERY_S = 0.0  # publish after every cover (30 s by default)
from indexing import FakeEmbedder, index
from coverlens.workspace import Workspace
index(Workspace.resolve(sys.argv[2]), FakeEmbedder(delay=0.3, announce=True), batch_size=2, rebuild=True)
"""


def test_a_reader_sees_what_a_running_index_has_published(library_workspace: Workspace) -> None:
    """A run in another process publishes a generation as it goes: a reader answers from the covers
    stored so far, flagged incomplete, not from the store as it was when the run began (here a
    rebuild: that store is gone), and from all of them once the run ends."""
    workspace, fake = library_workspace, FakeEmbedder()
    query, every = query_vector(workspace), catalog_ids(workspace)
    with CoverStore.open(workspace) as reader:
        collection = reader.collection_for(fake.name, fake.identity)
        child = subprocess.Popen([sys.executable, "-c", PUBLISHING_INDEX, str(TESTS), str(workspace.root)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            def after_batches(n: int) -> set[str]:
                for _ in range(n):  # batches of two handed to the writer (of twelve)
                    assert child.stdout.readline().startswith("embedded"), child.stderr.read() if child.stderr else ""
                return {h.id for h in collection.query(query, k=len(every))[0]}

            first, later = after_batches(2), after_batches(4)
            assert not collection.is_complete
            assert len(first) < len(later) < len(every) and later <= every  # not frozen at the first load
            assert reader._shared is not None and reader._shared.resets >= 1  # reopened on a published generation
        finally:
            child.communicate(timeout=120)
        assert child.returncode == 0
        assert {h.id for h in collection.query(query, k=len(every))[0]} == every and collection.is_complete


def test_a_run_publishes_what_it_stored_at_most_every_interval() -> None:
    from coverlens.indexer.run import _publishing

    class Store:
        reasons: list[str] = []

        def bump_generation(self, reason: str) -> None:
            self.reasons.append(reason)

    store = Store()
    assert list(_publishing(store, None, every_s=0.0)(iter(range(3)), 3)) == [0, 1, 2]  # type: ignore[arg-type]
    assert store.reasons == ["index run in progress: 1/3", "index run in progress: 2/3", "index run in progress: 3/3"]
    store.reasons.clear()
    assert list(_publishing(store, None, every_s=3600)(iter(range(3)), 3)) == [0, 1, 2]  # type: ignore[arg-type]
    assert store.reasons == []  # a short run publishes nothing before it ends


@pytest.mark.parametrize("mode", ["rebuild", "add"])
def test_killed_index_run_leaves_the_collection_flagged_until_a_run_completes(
        library_workspace: Workspace, tmp_path: Path, mode: str) -> None:
    workspace, fake = library_workspace, FakeEmbedder()
    if mode == "add":  # an incremental run: new covers to embed into a complete collection
        extra = tmp_path / "extra"
        from coverlens.sample_library import make_sample_library

        for path in make_sample_library(extra, genres=3, per_genre=6, size=40, seed=4):
            shutil.move(path, library_root(workspace) / path.parent.name / f"new-{path.name}")
        run_catalog(workspace)
    with CoverStore.open(workspace) as reader:
        collection = reader.collection_for(fake.name, fake.identity)
        assert collection.is_complete
        kill_mid_run(workspace, mode)
        reason = collection.incomplete_reason
        assert reason is not None and "has not finished" in reason
        assert not collection.is_complete and reader.incomplete() == {collection.name: reason}
        assert 0 < collection.count() < len(catalog_ids(workspace))  # a partial store, used only when flagged
    report = index(workspace, fake)  # a run that completes clears the flag
    assert report.collections[0].stored_after == len(catalog_ids(workspace))
    with CoverStore.open(workspace) as reader:
        collection = reader.collection_for(fake.name, fake.identity)
        assert collection.is_complete and reader.incomplete() == {} and collection.last_changed


def test_a_run_with_nothing_to_do_changes_nothing(library_workspace: Workspace) -> None:
    workspace, fake = library_workspace, FakeEmbedder()
    before = read_generation(workspace.store_dir)
    index(workspace, fake)
    assert read_generation(workspace.store_dir) == before
