"""Pictures embedded in audio files go through every stage like image files: indexed (with their
source kept in the store), opened for evaluation, shown by the app, suggested for when unlabelled."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverlens.catalog import distinct_covers, load_catalog, run_catalog
from coverlens.evaluate.passes import Feed, run_pass
from coverlens.evaluate.runner import load_splits
from coverlens.sample_music import cover_jpeg, make_sample_music, write_track
from coverlens.service import CoverlensService
from coverlens.sources import FILE, read_cover
from coverlens.workspace import Workspace
from fakes import FakeEmbedder, fake_registry
from indexing import index
from test_service import NO_CLIP_REGISTRY

UNLABELLED_ALBUMS = 2


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Workspace]:
    root = tmp_path_factory.mktemp("music")
    library = root / "music"
    make_sample_music(library, albums=16, tracks_per_album=1, seed=3)
    for n in range(UNLABELLED_ALBUMS):  # no genre tag: unlabelled covers, embedded in MP3s
        write_track(library / "Loose" / f"Single {n}" / "01.mp3", album=f"Single {n}", artist="Loose",
                    pictures=[(cover_jpeg(900 + n), 3)])
    workspace = Workspace(root / "ws")
    run_catalog(workspace, library)
    report = index(workspace, FakeEmbedder("finetuned"))
    assert report.failures == []
    return library, workspace


def service_of(workspace: Workspace) -> CoverlensService:
    registry = fake_registry({"finetuned": lambda ctx: FakeEmbedder("finetuned")}, NO_CLIP_REGISTRY)
    return CoverlensService(workspace, registry=registry)


def test_embedded_pictures_are_indexed_with_their_source(music: tuple[Path, Workspace]) -> None:
    _, workspace = music
    covers = distinct_covers(load_catalog(workspace))
    embedded = covers[covers["source"] != FILE]
    assert len(embedded) >= 8 and len(covers[covers["genre"] == ""]) == UNLABELLED_ALBUMS
    service = service_of(workspace)
    stored = service.stored_collection("finetuned").fetch()
    meta = dict(zip(stored.ids, stored.metadatas, strict=True))
    assert set(meta) == set(covers["id"])  # every cover, the unlabelled ones too
    for row in covers.to_dict("records"):
        assert (meta[row["id"]]["path"], meta[row["id"]]["source"]) == (row["path"], row["source"])
        assert (meta[row["id"]]["split"] == "unlabelled") == (not row["genre"])
    service.close()


def test_the_app_shows_an_embedded_picture_and_searches_with_it(music: tuple[Path, Workspace]) -> None:
    library, workspace = music
    covers = distinct_covers(load_catalog(workspace))
    row = covers[covers["source"] != FILE].iloc[0]
    service = service_of(workspace)
    shown = service.cover_image(row["path"], row["source"])
    assert isinstance(shown, Image.Image)
    expected = Image.open(io.BytesIO(read_cover(library, row["path"], row["source"]))).convert("RGB")
    assert np.array_equal(np.asarray(shown), np.asarray(expected))
    file_row = covers[covers["source"] == FILE].iloc[0]
    assert service.cover_image(file_row["path"]) == library.resolve() / file_row["path"]
    from coverlens.records import Hit
    from coverlens.ui import formatting as fmt

    [(picture, caption)] = fmt.hit_gallery([Hit(row["id"], 0.9, row["path"], row["genre"], "train", row["source"])],
                                           service.cover_image)
    assert isinstance(picture, Image.Image) and caption == f"{row['genre']} · 0.90"  # a gallery shows the image
    query = service.library_cover(row["path"])
    assert isinstance(query, bytes)
    result = service.search(query, k=4)
    assert result.query_id == row["id"] and row["id"] not in [h.id for h in result.neighbours]  # itself left out
    assert {h.source for h in result.neighbours} - {FILE}  # neighbours embedded in audio say so
    service.close()


def test_evaluation_opens_embedded_covers_and_never_scores_unlabelled_ones(music: tuple[Path, Workspace]) -> None:
    _, workspace = music
    classes, train, test, _ = load_splits(workspace, limit=None, seed=0)
    assert "" not in classes and len(classes) == 4
    assert len(train.ids) + len(test.ids) == 16  # the two unlabelled covers are in neither
    done = run_pass([*train.paths, *test.paths], {"fake": Feed(FakeEmbedder().embed)}, batch_size=4)
    assert done.unreadable == [] and len(done.decoded) == 16
    assert any("[" in str(ref) for ref in train.paths + test.paths)  # embedded ones name their frame


def test_suggestions_name_the_audio_file_and_frame(music: tuple[Path, Workspace]) -> None:
    _, workspace = music
    service = service_of(workspace)
    report = service.suggest(embedder="finetuned")
    service.close()
    rows = [r for r in report.rows() if r["kind"] == "unlabelled"]
    assert len(rows) == UNLABELLED_ALBUMS and all(r["path"].endswith(".mp3") for r in rows)
    assert all(r["source"].startswith("APIC") and r["source"] in r["cover"] for r in rows)
    assert all(r["signals"] == "vote" and r["suggested_genre"] for r in rows)  # no model yet: the vote alone
    assert any("head" in note for note in report.notes)  # why the head is missing is said


def test_metadata_text_gives_album_and_artist_words(music: tuple[Path, Workspace]) -> None:
    from coverlens.sources import metadata_text

    _, workspace = music
    covers = distinct_covers(load_catalog(workspace))
    texts = {row["path"]: metadata_text(row) for row in covers.to_dict("records")}
    assert texts["Loose/Single 0/01.mp3"] == "Single 0\nLoose"
    assert all(text.split("\n")[0].startswith("Album ") for path, text in texts.items() if "Artist" in path)
    assert metadata_text({"title": "  Blue \t Train ", "creator": float("nan")}) == "Blue Train"
    assert metadata_text({"path": "jazz/a.jpg", "genre": "jazz"}) == ""  # genre folders have none, and
    # the genre itself never leaks into the text
