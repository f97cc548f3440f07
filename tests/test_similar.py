"""Tests for coverlens.search.similar and `coverlens similar`, with a fake store and a fake embedder.

The fakes come from tests/fakes.py (shared with the other tests).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from coverlens.catalog import distinct_covers, library_root, load_catalog, run_catalog
from coverlens.cli import main
from coverlens.embedders import clip as clip_module
from coverlens.embedders import l2_normalise
from coverlens.embedders.clip import ClipLoad
from coverlens.errors import ArgumentError, ImageError, StoreError
from coverlens.records import Hit
from coverlens.search.similar import PAGE_BLOCK, content_id, nearest, similar_covers, vote_on_train
from coverlens.workspace import Workspace
from fakes import FakeCollection, FakeEmbedder, FakeStore, fake_registry, install_fake_store


def blob_collection(seed: int = 0, per: int = 12) -> tuple[FakeCollection, np.ndarray]:
    """Two genres: 'rock' around axis 0, 'jazz' around axis 1; every third cover is in the test split."""
    rng = np.random.default_rng(seed)
    dim = 16
    vectors, metas = [], []
    for g, genre in enumerate(["rock", "jazz"]):
        centre = np.eye(dim)[g]
        for i in range(per):
            vectors.append(centre + 0.05 * rng.normal(size=dim))
            metas.append({"path": f"{genre}/{i}.jpg", "genre": genre, "genres": genre,
                          "split": "test" if i % 3 == 0 else "train", "width": 32, "height": 32})
    ids = [f"id{i:03d}" for i in range(len(vectors))]
    return FakeCollection(ids, np.array(vectors, dtype=np.float32), metas), np.eye(dim)[0]


def fake_at(vector: np.ndarray) -> FakeEmbedder:
    return FakeEmbedder.pointing_at(vector)


def image() -> Image.Image:
    return Image.new("RGB", (8, 8), "red")


def test_self_is_excluded_and_the_page_stays_full() -> None:
    collection, _ = blob_collection()
    query = collection.fetch().vectors[5]
    plain = similar_covers(image(), fake_at(query), collection, k=4, exclude_self=True)
    assert plain.hits[0].id == "id005" and plain.hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    result = similar_covers(image(), fake_at(query), collection, k=4, query_id="id005")
    assert result.self_excluded
    assert [h.id for h in result.hits] == [h.id for h in plain.hits[1:]] + [result.hits[-1].id]
    assert len(result.hits) == 4 and "id005" not in {h.id for h in result.hits}
    kept = similar_covers(image(), fake_at(query), collection, k=4, query_id="id005", exclude_self=False)
    assert kept.hits[0].id == "id005" and not kept.self_excluded
    absent = similar_covers(image(), fake_at(query), collection, k=4, query_id="not-stored")
    assert not absent.self_excluded and len(absent.hits) == 4


def test_results_are_sorted_and_carry_the_query_vector() -> None:
    collection, axis = blob_collection()
    embedder = fake_at(axis)
    result = similar_covers(image(), embedder, collection, k=6)
    sims = [h.similarity for h in result.hits]
    assert sims == sorted(sims, reverse=True)
    assert {h.genre for h in result.hits} == {"rock"}
    assert embedder.calls == [1] and result.vector is not None and result.vector.shape == (16,)


def test_pages_follow_each_other_without_overlap() -> None:
    collection, _ = blob_collection()
    query = collection.fetch().vectors[3]
    whole = similar_covers(image(), fake_at(query), collection, k=9, query_id="id003")
    pages = [similar_covers(image(), fake_at(query), collection, k=3, offset=o, query_id="id003")
             for o in (0, 3, 6)]
    ids = [h.id for page in pages for h in page.hits]
    assert len(ids) == len(set(ids)) == 9
    assert ids == [h.id for h in whole.hits]
    assert collection.queries[-1] == (PAGE_BLOCK, None)  # every page is cut from the same answer
    nearest(query, collection, k=3, offset=6, exclude_id="id003")
    assert collection.queries[-1] == (3 + 6 + 1, None)  # k + offset + 1 for the query cover itself


class ShufflingCollection(FakeCollection):
    """Orders tied covers differently for each k, as an HNSW index may."""

    def query(self, vectors: np.ndarray, k: int, **kwargs: Any) -> list[list[Hit]]:
        everything = super().query(vectors, len(self._ids), **kwargs)
        return [list(np.random.default_rng(k).permutation(np.array(hits, dtype=object)))[:k]
                for hits in everything]


def test_tied_covers_never_repeat_across_pages() -> None:
    plain, axis = blob_collection(per=10)
    stored = plain.fetch()
    collection = ShufflingCollection(stored.ids, np.repeat(stored.vectors[:1], 20, axis=0), stored.metadatas)
    pages = [similar_covers(image(), fake_at(axis), collection, k=4, offset=o).hits for o in range(0, 20, 4)]
    ids = [h.id for page in pages for h in page]
    assert sorted(ids) == ids == sorted(collection.ids())


def test_page_past_the_end_is_short_or_empty() -> None:
    collection, axis = blob_collection(per=3)
    assert len(similar_covers(image(), fake_at(axis), collection, k=4, offset=4).hits) == 2
    assert similar_covers(image(), fake_at(axis), collection, k=4, offset=10).hits == []


def test_bad_paging_arguments_are_refused() -> None:
    collection, axis = blob_collection()
    with pytest.raises(ArgumentError, match="k must be at least 1, got 0"):
        nearest(axis, collection, k=0)
    with pytest.raises(ArgumentError, match="offset must not be negative, got -1"):
        nearest(axis, collection, k=3, offset=-1)


def test_vote_uses_train_covers_only() -> None:
    collection, axis = blob_collection()
    # a test-split cover sits right on the query and is labelled against its neighbours
    collection._vectors[0] = l2_normalise(axis.reshape(1, -1))[0]
    collection._meta[0].update(genre="jazz", split="test")
    result = vote_on_train(axis, collection, k=5)
    assert result.genre == "rock"
    assert len(result.evidence) == 5 and {h.split for h in result.evidence} == {"train"}
    assert "id000" not in {h.id for h in result.evidence}
    assert collection.queries == [(20, None)]  # one plain over-fetched query was enough
    assert result.scores[0].score == pytest.approx(1.0)


def test_vote_falls_back_to_a_filtered_query_when_test_covers_crowd_the_neighbours() -> None:
    collection, axis = blob_collection(per=40)
    for meta in collection._meta[:40]:  # every rock cover near the query but the last 4 is held out
        meta["split"] = "test"
    for meta in collection._meta[36:40]:
        meta["split"] = "train"
    result = vote_on_train(axis, collection, k=5)
    assert collection.queries == [(20, None), (5, {"split": "train"})]
    assert len(result.evidence) == 5 and {h.split for h in result.evidence} == {"train"}
    assert result.genre == "rock"  # the 4 training rock covers outweigh one far jazz cover


def test_vote_can_leave_out_the_query_cover() -> None:
    collection, _ = blob_collection()
    vector = collection.fetch().vectors[1]  # a train cover
    result = vote_on_train(vector, collection, k=4, exclude_id="id001")
    assert len(result.evidence) == 4 and "id001" not in {h.id for h in result.evidence}


def test_content_id_is_the_catalog_id(small_library: Path, workspace: Workspace) -> None:
    run_catalog(workspace, small_library)
    covers = distinct_covers(load_catalog(workspace))
    row = covers.iloc[0]
    data = (library_root(workspace) / row["path"]).read_bytes()
    assert content_id(data) == row["id"] == hashlib.md5(data).hexdigest()


# --- the command line, over the fake store ---------------------------------------------------


@pytest.fixture
def catalogued(small_library: Path, workspace: Workspace) -> tuple[Workspace, FakeCollection]:
    """A catalogued library whose distinct covers sit in a fake store, each with a random vector."""
    run_catalog(workspace, small_library)
    covers = distinct_covers(load_catalog(workspace))
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(covers), 8)).astype(np.float32)
    metas = covers[["path", "genre", "genres", "split", "width", "height"]].to_dict("records")
    return workspace, FakeCollection(list(covers["id"]), vectors, metas)


def test_cli_similar_lines_and_json(catalogued: tuple[Workspace, FakeCollection], monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    workspace, collection = catalogued
    stored = collection.fetch()
    registry = fake_registry({"finetuned": lambda ctx: FakeEmbedder.pointing_at(stored.vectors[2])})
    install_fake_store(monkeypatch, FakeStore(collection), registry=registry)
    query = library_root(workspace) / stored.metadatas[2]["path"]
    assert main(["similar", str(query), "-k", "3", "-w", str(workspace.root)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    score, path = lines[0].split("\t")
    assert len(score.split(".")[1]) == 4 and Path(path).is_absolute() and Path(path).exists()
    assert Path(path) != query  # the query cover itself is left out
    assert main(["similar", str(query), "-k", "2", "--offset", "1", "--json", "-w", str(workspace.root)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [set(r) for r in rows] == [{"id", "similarity", "genre", "split", "path"}] * 2
    assert rows[0]["path"] == lines[1].split("\t")[1]


def test_cli_similar_clip_queries_with_the_stored_weights(
        catalogued: tuple[Workspace, FakeCollection], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    workspace, finetuned = catalogued
    stored = finetuned.fetch()
    identity = {"kind": "open_clip", "model": "ViT-X", "pretrained": "local-dir:/weights"}
    clip = FakeCollection(stored.ids, stored.vectors, stored.metadatas, embedder="clip", identity=identity)
    install_fake_store(monkeypatch, FakeStore(finetuned, clip))
    asked: list[tuple[str | None, str | None]] = []

    def fake_load(model: str, pretrained: str, device: str | None = None) -> ClipLoad:
        asked.append((model, pretrained))
        return ClipLoad(FakeEmbedder.pointing_at(stored.vectors[0], "clip", identity), None)

    monkeypatch.setattr(clip_module, "load_clip_embedder", fake_load)  # the registry's real CLIP build
    query = library_root(workspace) / stored.metadatas[0]["path"]
    assert main(["similar", str(query), "--embedder", "clip", "-k", "2", "-w", str(workspace.root)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert asked == [("ViT-X", "local-dir:/weights")]  # the weights the stored vectors were made with


def test_cli_similar_errors(catalogued: tuple[Workspace, FakeCollection], monkeypatch: pytest.MonkeyPatch,
                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace, collection = catalogued
    store = FakeStore()  # nothing indexed
    registry = fake_registry({"finetuned": lambda ctx: pytest.fail("no model should load without an index")})
    install_fake_store(monkeypatch, store, registry=registry)
    some_cover = next(library_root(workspace).rglob("*.jpg"))
    assert main(["similar", str(some_cover), "-w", str(workspace.root)]) == StoreError.exit_code
    assert "run `coverlens index`" in capsys.readouterr().err
    assert store.closed
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    assert main(["similar", str(broken), "-w", str(workspace.root)]) == ImageError.exit_code
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "not an image" in err


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from coverlens.cli import main\n"
        "for command in ('similar', 'clusters', 'suspects'):\n"
        "    try:\n"
        "        main([command, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = {'torch', 'sklearn', 'hdbscan', 'chromadb', 'matplotlib', 'pandas', 'open_clip'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "--offset" in done.stdout and "--min-cluster-size" in done.stdout and "--min-share" in done.stdout
