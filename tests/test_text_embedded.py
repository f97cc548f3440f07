"""The words on pictures embedded in audio files: the text stage reads every cover through the one
cover reader (`sources.open_cover`), so `index` OCRs an ID3 APIC frame, a FLAC picture block and an
MP4 `covr` atom like an image file, and `find WORD` finds the album whose embedded art carries it.

A generated music collection (mutagen writes the tags, as in tests/test_music_source.py); real OCR
(RapidOCR) reads words drawn with Pillow's scalable default font on 160 px covers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from coverlens.cli import common, main
from coverlens.sample_music import write_track
from coverlens.service import CoverlensService
from coverlens.sources import FILE, read_cover
from coverlens.workspace import Workspace
from test_text_integration import cli, registry_without_downloads
from text_covers import word_cover

# album folder -> (track file, the word drawn on its art); the art sits in the tags, or beside (folder.jpg)
ALBUMS = {
    "Nightfall": ("01.mp3", "LANTERN"),  # ID3 APIC
    "Tidewater": ("01.flac", "HARBOUR"),  # FLAC picture block
    "Ironworks": ("01.m4a", "FURNACE"),  # MP4 covr
    "Meadow": ("01.mp3", "CLOVER"),  # folder.jpg beside an untagged-picture track
}
EXPECTED_SOURCE = {"Nightfall": "APIC:0", "Tidewater": "flac-picture:0", "Ironworks": "covr:0", "Meadow": FILE}


def art(word: str, shade: int) -> bytes:
    data = io.BytesIO()
    word_cover([word], size=160, background=(30 + shade, 40, 90)).save(data, format="JPEG", quality=95)
    return data.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """catalog -> index (no model yet: the text stage alone), through the CLI."""
    root = tmp_path_factory.mktemp("music-words")
    library = root / "music"
    for shade, (album, (track, word)) in enumerate(ALBUMS.items()):
        folder = library / "Someone" / album
        picture = art(word, 25 * shade)
        embedded = EXPECTED_SOURCE[album] != FILE
        write_track(folder / track, genres=["Jazz" if shade % 2 else "Rock"], album=album, artist="Someone",
                    pictures=[(picture, 3)] if embedded else ())
        if not embedded:
            (folder / "folder.jpg").write_bytes(picture)
    workspace = Workspace(root / "ws")
    registry = registry_without_downloads()
    common.SERVICE_FACTORY = lambda ws, **kw: CoverlensService(ws, registry=registry, **kw)
    try:
        for argv in (["catalog", str(library)], ["index", "--text"]):
            try:
                code = main([*argv, "-w", str(workspace.root)])
            except SystemExit as exc:
                code = int(exc.code or 0)
            assert code == 0, f"{argv[0]} failed"
    finally:
        common.SERVICE_FACTORY = None
    return {"library": library, "workspace": workspace, "registry": registry}


@pytest.fixture(autouse=True)
def offline_registry(monkeypatch: pytest.MonkeyPatch, built: dict[str, Any]) -> None:
    registry = built["registry"]
    monkeypatch.setattr(common, "SERVICE_FACTORY", lambda ws, **kw: CoverlensService(ws, registry=registry, **kw))


def test_index_reads_the_words_on_embedded_pictures(built: dict[str, Any]) -> None:
    from coverlens.catalog import distinct_covers, load_catalog
    from coverlens.text.stage import text_store_for

    covers = distinct_covers(load_catalog(built["workspace"]))
    assert sorted(covers["source"]) == sorted(EXPECTED_SOURCE.values())  # the catalog found each picture
    with text_store_for(built["workspace"].root, readonly=True) as store:
        stored = store.get(list(covers["id"]))
    for row in covers.to_dict("records"):
        album = Path(row["path"]).parts[1]
        record = stored[row["id"]]
        assert not record.error, (album, record.error)
        assert "".join(record.text.upper().split()) == ALBUMS[album][1], (album, row["source"])


@pytest.mark.parametrize("album", list(ALBUMS))
def test_find_a_word_finds_the_album_whose_art_carries_it(built: dict[str, Any], album: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    track, word = ALBUMS[album]
    code, out, _ = cli(capsys, "find", word.lower(), "--json", "-w", str(built["workspace"].root))
    assert code == 0
    first = json.loads(out)[0]
    expected_path = f"Someone/{album}/{'folder.jpg' if EXPECTED_SOURCE[album] == FILE else track}"
    assert (first["path"], first["source"]) == (expected_path, EXPECTED_SOURCE[album])
    assert f"[{word}]" in first["matched"].upper()


def test_the_app_shows_the_embedded_picture_a_word_found(built: dict[str, Any]) -> None:
    from coverlens.ui import formatting as fmt

    service = CoverlensService(built["workspace"], registry=built["registry"])
    try:
        [match] = service.find("furnace", k=1)
        shown = fmt.shown(service.cover_image, match.path, match.source)  # what the app's find gallery shows
    finally:
        service.close()
    assert match.source == "covr:0" and isinstance(shown, Image.Image)
    picture = Image.open(io.BytesIO(read_cover(built["library"], match.path, match.source))).convert("RGB")
    assert np.array_equal(np.asarray(shown), np.asarray(picture))


def test_a_picture_gone_from_its_file_is_a_recorded_failure_naming_it(built: dict[str, Any], tmp_path: Path) -> None:
    from coverlens.text.ocr import OcrSettings
    from coverlens.text.stage import run_text_stage
    from coverlens.text.store import TextStore

    library = built["library"]
    with TextStore(tmp_path / "text.db") as store:
        summary = run_text_stage(store, [("gone", "Someone/Nightfall/01.mp3", "APIC:3"),
                                         ("ok", "Someone/Tidewater/01.flac", "flac-picture:0")],
                                 root=library, settings=OcrSettings(det_side=480), workers=1)
        got = store.get(["gone", "ok"])
    assert (summary.read, summary.failed) == (1, 1)
    assert "APIC:3" in got["gone"].error and "no longer in the file" in got["gone"].error
    assert "".join(got["ok"].text.split()) == "HARBOUR"
