"""Indexing on Ray: a local cluster on loopback (2 CPUs) writing into a Chroma server gives the same
store as the single-process indexer, resumes with only the missing covers, and refuses an embedded store;
the OCR text stage on Ray gives the single-process text store row for row, and resumes the same way."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from coverlens.catalog import load_catalog, run_catalog
from coverlens.embedders.projection import fit_projection, project
from coverlens.errors import StoreError
from coverlens.indexer.ray_runner import EMBEDDED_REFUSED, write_on_ray
from coverlens.indexer.ray_stages import EmbedCovers, read_covers
from coverlens.sample_library import make_sample_library
from coverlens.store import CoverStore
from coverlens.text.ocr import OcrReader, OcrSettings
from coverlens.text.ray_reads import ReadText, read_on_ray, records
from coverlens.text.stage import read_text_of, read_workspace_text, text_store_for
from coverlens.workspace import Workspace
from fakes import FakeEmbedder
from indexing import catalog_ids, index, make_workspace, stored
from local_servers import chroma_server
from text_covers import write_word_covers

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    # workers import coverlens and the tests' fakes from the same places as this process
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
    yield
    ray.shutdown()


def embedders() -> list:
    """Two collections: a plain 8-d fake, and a 24-d fake behind a fitted 6-d projection."""
    rng = np.random.default_rng(1)
    wide = FakeEmbedder("wide", dimension=24, seed=2)
    return [FakeEmbedder("fake", dimension=8), project(wide, fit_projection(rng.normal(size=(50, 24)), 6, "whiten"))]


def test_the_stages_without_ray_match_the_embedder(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path, genres=2, per_genre=3)
    root = tmp_path / "lib"
    paths = sorted(load_catalog(workspace)["path"])[:4] + ["missing.png"]
    batch = {"id": np.array([f"id{n}" for n in range(5)], dtype=object), "path": np.array(paths, dtype=object),
             "wants": np.array([1, 3, 2, 3, 3])}
    read = read_covers(batch, str(root))
    assert [bool(e) for e in read["error"]] == [False] * 4 + [True]
    out = EmbedCovers(embedders())(read)
    fake = embedders()[0]
    from coverlens.images import open_image

    expected = fake.embed([open_image(root / p) for p in paths[:4]])
    np.testing.assert_allclose(out["vector_0"][[0, 1, 3]], expected[[0, 1, 3]], atol=1e-6)
    assert not out["vector_0"][2].any() and not out["vector_1"][0].any()  # not wanted: not embedded
    assert "pixels" not in out and workspace.root.exists()


def test_an_embedded_store_is_refused_with_the_reason() -> None:
    with pytest.raises(StoreError, match="needs a Chroma server"):
        write_on_ray("auto", None)
    assert "--chroma-url" in EMBEDDED_REFUSED


def test_ray_index_matches_the_single_process_index_and_resumes(tmp_path: Path, local_ray: None) -> None:
    """One Ray run (Ray's start-up is most of the time): into a server store that a stopped run left
    with 8 of the 23 readable covers, it embeds exactly the 15 missing ones, and ends equal to the
    single-process store: same ids, metadata and unreadable covers, vectors within float tolerance."""
    workspace = make_workspace(tmp_path, genres=3, per_genre=8)
    broken = tmp_path / "lib" / sorted(load_catalog(workspace)["path"])[0]
    broken.write_bytes(b"not an image any more")  # catalogued readable, unreadable when indexed
    local = index(workspace, *embedders())
    assert [c.added for c in local.collections] == [23, 23] and len(local.failures) == 1
    remote_ws = Workspace(tmp_path / "ws-ray")  # same catalog, its own (server) store
    remote_ws.root.mkdir()
    for name in ("catalog.csv", "library.json", "workspace.json"):
        (remote_ws.root / name).write_bytes((workspace.root / name).read_bytes())
    with chroma_server(tmp_path / "chroma", remote_ws) as url:
        with CoverStore.open(remote_ws, url=url, writer=True) as store:  # what a stopped run left behind
            for embedder in embedders():
                done = stored(workspace, embedder).fetch()
                kept = store.collection_for(embedder.name, embedder.identity, create=True)
                kept.upsert(done.ids[:8], done.vectors[:8], done.metadatas[:8])
        report = index(remote_ws, *embedders(), url=url, writer=write_on_ray("auto", url))
        assert [c.added for c in report.collections] == [15, 15]  # only the missing covers
        assert report.failures == local.failures
        for embedder in embedders():
            mine, theirs = stored(workspace, embedder).fetch(), stored(remote_ws, embedder, url).fetch()
            assert sorted(theirs.ids) == sorted(mine.ids) == sorted(catalog_ids(workspace) - {_id(broken, workspace)})
            order = [mine.ids.index(i) for i in theirs.ids]
            np.testing.assert_allclose(theirs.vectors, mine.vectors[order], atol=1e-5)
            assert theirs.metadatas == [mine.metadatas[n] for n in order]
            assert stored(remote_ws, embedder, url).is_complete


OCR = OcrSettings(det_side=480)  # small generated covers read as well at a smaller detection size, faster


def word_workspace(root: Path) -> Workspace:
    """A catalogued library of plain covers, covers with words on them, and one that breaks after cataloguing."""
    make_sample_library(root / "lib", genres=2, per_genre=2, size=40, seed=1)
    genre = sorted(p for p in (root / "lib").iterdir() if p.is_dir())[0]
    write_word_covers(genre, {"w-jazz": ["JAZZ"], "w-opera": ["OPERA", "LIVE"], "w-punk": ["PUNK"]}, size=160)
    workspace = Workspace(root / "ws")
    run_catalog(workspace, root / "lib")
    sorted(genre.glob("*.jpg"))[0].write_bytes(b"not an image any more")
    return workspace


def copy_workspace(workspace: Workspace, root: Path) -> Workspace:
    """The same catalog (same library, same content ids) with its own stores."""
    copy = Workspace(root)
    copy.root.mkdir()
    for name in ("catalog.csv", "library.json", "workspace.json"):
        (copy.root / name).write_bytes((workspace.root / name).read_bytes())
    return copy


def test_the_ocr_actor_gives_the_local_records(tmp_path: Path) -> None:
    """`ReadText` (also across a reader rebuilt after `recycle_after` covers) and the records it ships
    back give exactly what the local stage reads."""
    paths = write_word_covers(tmp_path, {"a": ["JAZZ"], "b": ["SOUL"], "c": ["FOLK"]}, size=160)
    paths["gone"] = tmp_path / "gone.png"
    items = [(cid, str(tmp_path), path.name, "") for cid, path in paths.items()]
    batch = {key: np.array([item[n] for item in items], dtype=object)
             for n, key in enumerate(("id", "root", "path", "source"))}
    shipped = list(records(ReadText(OCR, recycle_after=2)(batch)))
    reader = OcrReader(OCR)
    assert shipped == [read_text_of(reader, item) for item in items]
    assert [r.text for r in shipped[:3]] == ["JAZZ", "SOUL", "FOLK"] and "not found" in shipped[3].error


def test_ray_text_stage_matches_the_single_process_one_and_resumes(tmp_path: Path, local_ray: None) -> None:
    """Into a text store that a stopped run left with 3 covers, OCR in Ray actors reads exactly the
    others, and the store ends equal to the single-process one: ids, reader, every line's text, box and
    confidence, joined text, and the unreadable cover's reason."""
    workspace = word_workspace(tmp_path)
    local = read_workspace_text(workspace.root, settings=OCR, workers=1)
    assert (local.covers, local.read, local.failed) == (7, 6, 1)
    remote_ws = copy_workspace(workspace, tmp_path / "ws-ray")
    with text_store_for(workspace.root) as mine, text_store_for(remote_ws.root) as theirs:
        read = [r for _, r in sorted(mine.get(mine.readers()).items()) if not r.error]
        theirs.put(read[:3])  # what a stopped run left behind (the unreadable cover is left to the actors)
    summary = read_workspace_text(remote_ws.root, settings=OCR, reads=read_on_ray("auto"))
    assert (summary.reused, summary.read + summary.failed, summary.failed) == (3, 4, 1)
    with text_store_for(workspace.root) as mine, text_store_for(remote_ws.root) as theirs:
        assert theirs.dump() == mine.dump()
        assert {"JAZZ", "PUNK"} <= {r.text for r in theirs.get(theirs.readers()).values()}
        assert [hit.text for hit in theirs.find("opera")] == ["OPERA\nLIVE"]


def test_index_on_ray_reads_the_words_on_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`index --ray ADDRESS` hands the text stage a Ray reader; without --ray the local one is used."""
    from types import SimpleNamespace

    import coverlens.text.stage as stage
    from coverlens.service_text import TextJobs

    asked: list[object] = []
    monkeypatch.setattr(stage, "read_workspace_text", lambda root, progress=None, reads=None: asked.append(reads))
    service = SimpleNamespace(workspace=Workspace(tmp_path))
    TextJobs._read_text(service, None, "auto")  # type: ignore[arg-type]
    TextJobs._read_text(service, None)  # type: ignore[arg-type]
    assert asked[0].__qualname__ == read_on_ray("auto").__qualname__ and asked[1] is None


def _id(path: Path, workspace: Workspace) -> str:
    catalog = load_catalog(workspace)
    return str(catalog[catalog["path"] == str(path.relative_to(workspace.root.parent / "lib"))]["id"].iloc[0])


def test_actors_move_torch_embedders_to_their_device() -> None:
    """What a GPU actor does to the models it is handed (shown with torch's "meta" device: no GPU here)."""
    import torch

    from coverlens.indexer.ray_stages import to_device

    class Backbone:  # the attributes BackboneEmbedder keeps
        def __init__(self) -> None:
            self.net, self.device = torch.nn.Linear(4, 2), torch.device("cpu")

    class Clip:  # the attributes ClipEmbedder keeps
        def __init__(self) -> None:
            self.model, self.device = torch.nn.Linear(4, 2), "cpu"

    backbone, clip = Backbone(), Clip()
    projected = project(backbone, None)  # no projection: itself
    EmbedCovers([projected, clip, FakeEmbedder()], device="meta")
    assert backbone.device == torch.device("meta") and backbone.net.weight.device.type == "meta"
    assert clip.device == "meta" and clip.model.weight.device.type == "meta"
    wrapped = Backbone()
    to_device(type("Projected", (), {"inner": wrapped})(), "meta")
    assert wrapped.net.weight.device.type == "meta"
