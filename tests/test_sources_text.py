"""Genre rules, genre map files and manifest decoding: every bad file named with its line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coverlens.catalog import load_catalog, run_catalog
from coverlens.errors import LibraryError, ManifestError
from coverlens.sources.genres import GenreRules, album_genre, load_genre_map
from coverlens.workspace import Workspace


@pytest.mark.parametrize(("values", "expected"), [
    (["Rock; Alternative"], ["Rock", "Alternative"]),
    (["rock", "ROCK", " Rock "], ["Rock"]),
    (["Rock/Pop"], ["Rock", "Pop"]),
    (["Jazz, Blues | Soul"], ["Jazz", "Blues", "Soul"]),
    (["Folk & Country"], ["Folk", "Country"]),
    (["R&B/Soul", "rock & roll", "Drum & Bass"], ["R&B", "Soul", "Rock & Roll", "Drum & Bass"]),
    (["hip-hop", "80s   pop"], ["Hip-Hop", "80s Pop"]),
    (["(17)", "(32)(8)", "13", "(17)Heavy Rock", "(RX)", "(CR)"], ["Rock", "Classical", "Jazz", "Pop", "Heavy Rock"]),
    (["Rock\x00Pop"], ["Rock", "Pop"]),
    (["Unknown", "other", "", "  ", "General", "Genre"], []),
])
def test_genre_rules(values: list[str], expected: list[str]) -> None:
    assert GenreRules().genres(values) == expected


def test_mapping_comes_before_splitting_and_can_drop() -> None:
    rules = GenreRules({"rock & pop": "Pop Rock", "alternative": "Rock", "favourites": ""})
    assert rules.genres(["ROCK & POP; Alternative", "Favourites"]) == ["Pop Rock", "Rock"]
    assert rules.first(["Favourites", "alternative"]) == "Rock"
    assert GenreRules({"ambient": "Electronic"}, normalise=False).label("Ambient") == "Electronic"
    assert GenreRules(normalise=False).label(" ambient ") == "ambient"  # folder labels stay verbatim


def test_album_genre_majority_then_mentions_then_order() -> None:
    assert album_genre([["Rock"], ["Pop", "Rock"], ["Pop"]]) == "Pop"
    assert album_genre([["Rock", "Pop"], ["Pop", "Rock"], ["Jazz", "Rock"]]) == "Rock"  # tie: most mentioned
    assert album_genre([["Jazz"], ["Soul"]]) == "Jazz"  # full tie: met first
    assert album_genre([[], []]) == ""


def test_genre_map_files_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "map.csv"
    good.write_bytes("\ufeffraw,genre\nHip  Hop,Hip-Hop\nmisc,\n".encode())
    assert load_genre_map(good) == {"hip hop": "Hip-Hop", "misc": ""}
    cases = {
        "header.csv": (b"from,to\na,b\n", "line 1: the header must be `raw,genre`"),
        "fields.csv": (b"raw,genre\na,b\nc,d,e\n", "line 3: 3 fields, expected 2"),
        "latin.csv": ("raw,genre\nrock,Rock\ncaf\xe9,Caf\xe9\n".encode("latin-1"), "line 3: not UTF-8 text"),
        "nul.csv": (b"raw,genre\nro\x00ck,Rock\n", "line 2: a NUL byte"),
        "bad.json": (b'{"a": "b",\n "c": }', "line 2: not valid JSON"),
        "list.json": (b'["a"]', "expected a JSON object"),
        "number.json": (b'{"a": 3}', "the value of 'a' is not a string"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LibraryError) as caught:
            load_genre_map(tmp_path / name)
        assert name in str(caught.value) and message in str(caught.value), str(caught.value)
    with pytest.raises(LibraryError, match="missing.csv: file not found"):
        load_genre_map(tmp_path / "missing.csv")


@pytest.fixture
def manifest_library(small_library: Path) -> Path:
    return small_library


def write_manifest(library: Path, name: str, data: bytes) -> Path:
    path = library / name
    path.write_bytes(data)
    return path


def test_manifest_with_and_without_bom_and_unlabelled_rows(manifest_library: Path, workspace: Workspace) -> None:
    body = "path,genre\nambient/ambient_0001.jpg,ambient\nambient/ambient_0002.jpg,\ncountry/country_0001.jpg,country\n"
    for name, data in (("plain.csv", body.encode()), ("bom.csv", b"\xef\xbb\xbf" + body.encode())):
        summary = run_catalog(workspace, manifest=write_manifest(manifest_library, name, data))
        assert summary.files == 3 and summary.unlabelled == 1 and summary.genres == 2
    frame = load_catalog(workspace).set_index("path")
    assert frame.loc["ambient/ambient_0002.jpg", "split"] == "unlabelled"


@pytest.mark.parametrize(("data", "message"), [
    ("path,genre\nambient/ambient_0001.jpg,caf\xe9\n".encode("latin-1"),
     "line 2: not UTF-8 text (byte 0xE9 at column 29)"),
    ("path,genre\nambient/ambient_0001.jpg,ambient\n".encode("utf-16"), "line 1: the file is UTF-16 text"),
    (b"path,genre\nambient/ambient_0001.jpg,ambient\nambient/ambient_0002.jpg,amb\x00ient\n",
     "line 3: a NUL byte at column 29"),
    (b"path,genre\nambient/ambient_0001.jpg,ambient,extra\n", "row 2: 3 fields, the header has 2"),
    (b"path\nambient/ambient_0001.jpg\n", "missing column(s): genre"),
    (b"", "missing column(s): path, genre"),
    (b'path,genre\n"ambient/ambient_0001.jpg,ambient\n', "row 2: ambient/ambient_0001.jpg,ambient: no genre field"),
])
def test_bad_manifests_name_file_and_line(manifest_library: Path, workspace: Workspace, data: bytes,
                                          message: str) -> None:
    manifest = write_manifest(manifest_library, "bad.csv", data)
    with pytest.raises(ManifestError) as caught:
        run_catalog(workspace, manifest=manifest)
    assert str(manifest) in str(caught.value) and message in str(caught.value), str(caught.value)
    assert not workspace.catalog_file.exists()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coverlens", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_cli_catalog_music_with_genre_map_and_bad_inputs(tmp_path: Path) -> None:
    from coverlens.sample_music import cover_jpeg, write_track

    write_track(tmp_path / "music/A/B/01.mp3", genres=["Soul; Funk"], album="B", pictures=[(cover_jpeg(0), 3)])
    write_track(tmp_path / "music/A/C/01.flac", album="C", pictures=[(cover_jpeg(1), 3)])
    (tmp_path / "map.csv").write_text("raw,genre\nsoul,R&B\n")
    env = {"COVERLENS_WORKSPACE": str(tmp_path / "ws")}
    done = run_cli("catalog", str(tmp_path / "music"), "--genre-map", str(tmp_path / "map.csv"), env=env)
    assert done.returncode == 0, done.stderr
    assert "catalogued 2 files" in done.stdout and "source: music" in done.stdout and "1 unlabelled" in done.stdout
    assert set(load_catalog(Workspace(tmp_path / "ws"))["genre"]) == {"R&B", ""}
    (tmp_path / "bad.csv").write_bytes(b"path,genre\nx.jpg,caf\xe9\n")
    for args in (["--manifest", str(tmp_path / "bad.csv")], [str(tmp_path / "music"), "--source", "calibre"],
                 [str(tmp_path / "music"), "--genre-map", str(tmp_path / "nope.json")]):
        bad = run_cli("catalog", *args, env=env)
        assert bad.returncode == 4 and "Traceback" not in bad.stderr, bad.stderr
        assert any(name in bad.stderr for name in ("bad.csv", "metadata.db", "nope.json")), bad.stderr
