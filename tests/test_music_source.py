"""The music collection source, on small collections built in code (MP3, FLAC, M4A, Ogg Opus)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from coverlens.catalog import distinct_covers, load_catalog, run_catalog
from coverlens.errors import ImageError, WorkspaceError
from coverlens.inspect_report import overview, write_inspect_report
from coverlens.sample_music import cover_jpeg, write_track
from coverlens.sources import detect_source, read_cover
from coverlens.workspace import Workspace

FRONT, BACK = 3, 4


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and folder under root: sha256 of files, a marker for folders (a new file shows too)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def build_collection(root: Path) -> dict[str, bytes]:
    """A small messy collection; returns the picture bytes by name."""
    art = {name: cover_jpeg(seed) for seed, name in enumerate(
        ["loud", "blue", "beats", "night", "folder", "folder_embedded", "nogenre", "messy", "x", "y", "shared",
         "back"])}
    loud = dict(album="Loud Album", artist="Rock Band")
    write_track(root / "Rock Band/Loud Album/01.mp3", genres=["Rock; Alternative"], pictures=[(art["loud"], FRONT)],
                **loud)
    write_track(root / "Rock Band/Loud Album/02.mp3", genres=["rock"], pictures=[(art["loud"], FRONT)], **loud)
    blue = dict(album="Blue", artist="Jazz Trio", album_artist="The Jazz Trio")
    write_track(root / "Jazz Trio/Blue/01.flac", genres=["jazz/blues"],
                pictures=[(art["back"], BACK), (art["blue"], FRONT)], **blue)
    write_track(root / "Jazz Trio/Blue/02.flac", genres=["JAZZ"], **blue)
    write_track(root / "Hip/Beats/01.m4a", genres=["hip-hop"], album="Beats", artist="MC Test",
                pictures=[(art["beats"], FRONT)])
    write_track(root / "Opus/Night/01.opus", genres=["(32)"], album="Night", artist="Orchestra",
                pictures=[(art["night"], FRONT)])
    folder = dict(album="Waves", artist="Synth")
    write_track(root / "Synth/Waves/01.mp3", genres=["ELECTRONIC | Ambient"],
                pictures=[(art["folder_embedded"], FRONT)], **folder)
    write_track(root / "Synth/Waves/02.mp3", genres=["Electronic"], **folder)
    (root / "Synth/Waves/folder.jpg").write_bytes(art["folder"])
    (root / "Synth/Waves/back.jpg").write_bytes(art["back"])  # not a cover name: skipped
    write_track(root / "Quiet/No Picture/01.mp3", genres=["Pop"], album="No Picture", artist="Quiet")
    write_track(root / "Anon/Untitled/01.flac", album="Untitled", pictures=[(art["nogenre"], FRONT)])
    write_track(root / "Anon/Untitled/02.flac", genres=["Unknown"], album="Untitled")
    messy = dict(album="Messy", artist="Various")
    write_track(root / "Messy/Album/01.mp3", genres=["Rock/Pop"], pictures=[(art["messy"], FRONT)], **messy)
    write_track(root / "Messy/Album/02.mp3", genres=["pop"], **messy)
    write_track(root / "Messy/Album/03.mp3", genres=["Pop", "Rock"], **messy)
    (root / "Broken").mkdir()
    (root / "Broken/corrupt.flac").write_bytes(b"this is not a flac file at all" * 10)
    write_track(root / "Bad/Picture/01.mp3", genres=["Jazz"], album="Picture", pictures=[(b"not an image", FRONT)])
    write_track(root / "Mixed/01.mp3", genres=["Soul"], album="X", pictures=[(art["x"], FRONT)])
    write_track(root / "Mixed/02.mp3", genres=["Funk"], album="Y", pictures=[(art["y"], FRONT)])
    (root / "Mixed/cover.jpg").write_bytes(art["shared"])
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "notes.txt").write_text("not music")
    return art


EXPECTED = {  # (path, source): (genre, status, title, creator, picture name)
    ("Rock Band/Loud Album/01.mp3", "APIC:0"): ("Rock", "ok", "Loud Album", "Rock Band", "loud"),
    ("Jazz Trio/Blue/01.flac", "flac-picture:1"): ("Jazz", "ok", "Blue", "The Jazz Trio", "blue"),
    ("Hip/Beats/01.m4a", "covr:0"): ("Hip-Hop", "ok", "Beats", "MC Test", "beats"),
    ("Opus/Night/01.opus", "ogg-picture:0"): ("Classical", "ok", "Night", "Orchestra", "night"),
    ("Synth/Waves/folder.jpg", "file"): ("Electronic", "ok", "Waves", "Synth", "folder"),
    ("Anon/Untitled/01.flac", "flac-picture:0"): ("", "ok", "Untitled", "", "nogenre"),
    ("Messy/Album/01.mp3", "APIC:0"): ("Pop", "ok", "Messy", "Various", "messy"),
    ("Broken/corrupt.flac", "tags"): ("", "unreadable", "", "", None),
    ("Bad/Picture/01.mp3", "APIC:0"): ("Jazz", "unreadable", "Picture", "", None),
    ("Mixed/01.mp3", "APIC:0"): ("Soul", "ok", "X", "", "x"),
    ("Mixed/02.mp3", "APIC:0"): ("Funk", "ok", "Y", "", "y"),
}


@pytest.fixture
def collection(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "music"
    return root, build_collection(root)


def test_catalog_rows_of_a_messy_collection(collection: tuple[Path, dict[str, bytes]], workspace: Workspace) -> None:
    root, art = collection
    assert detect_source(root) == "music"
    summary = run_catalog(workspace, root)
    frame = load_catalog(workspace)
    got = {(r.path, r.source): (r.genre, r.status, r.title, r.creator) for r in frame.itertuples()}
    assert got == {key: value[:4] for key, value in EXPECTED.items()}
    rows = frame.set_index(["path", "source"])
    for key, (*_, picture) in EXPECTED.items():
        if picture is not None:  # the cover's identity is the md5 of the picture, wherever it lives
            assert rows.loc[key, "id"] == hashlib.md5(art[picture]).hexdigest()
            assert rows.loc[key, "width"] == 32 and rows.loc[key, "format"] == "JPEG"
    assert "cannot read tags" in rows.loc[("Broken/corrupt.flac", "tags"), "reason"]
    assert "not an image" in rows.loc[("Bad/Picture/01.mp3", "APIC:0"), "reason"]
    # ID3v2.3 has one TCON value: mutagen joins several with "/"
    assert rows.loc[("Messy/Album/01.mp3", "APIC:0"), "raw_genre"] == "Rock/Pop | pop | Pop/Rock"
    assert rows.loc[("Anon/Untitled/01.flac", "flac-picture:0"), "split"] == "unlabelled"
    assert summary.source == "music" and summary.unlabelled == 1 and summary.unreadable == 2
    assert summary.no_cover == ["Quiet/No Picture (No Picture)"]
    assert "1 without a picture: Quiet/No Picture" in summary.describe()


def test_library_is_byte_for_byte_unchanged(collection: tuple[Path, dict[str, bytes]], workspace: Workspace) -> None:
    root, _ = collection
    before = tree_digest(root)
    run_catalog(workspace, root)
    write_inspect_report(workspace, load_catalog(workspace))
    covers = distinct_covers(load_catalog(workspace))
    for row in covers.itertuples():
        read_cover(root, row.path, row.source)
    run_catalog(workspace, root)
    assert tree_digest(root) == before


def test_read_cover_returns_the_embedded_bytes(collection: tuple[Path, dict[str, bytes]]) -> None:
    root, art = collection
    assert read_cover(root, "Hip/Beats/01.m4a", "covr:0") == art["beats"]
    assert read_cover(root, "Opus/Night/01.opus", "ogg-picture:0") == art["night"]
    assert read_cover(root, "Jazz Trio/Blue/01.flac", "flac-picture:0") == art["back"]
    assert read_cover(root, "Synth/Waves/folder.jpg") == art["folder"]
    with pytest.raises(ImageError, match=r"01\.mp3 \[APIC:3\].*no longer in the file"):
        read_cover(root, "Rock Band/Loud Album/01.mp3", "APIC:3")
    with pytest.raises(ImageError, match="outside the library"):
        read_cover(root, "../elsewhere.mp3", "APIC:0")
    with pytest.raises(ImageError, match=r"corrupt\.flac \[flac-picture:0\]: cannot read tags"):
        read_cover(root, "Broken/corrupt.flac", "flac-picture:0")


def test_unchanged_rerun_reads_no_tags_and_a_retagged_track_is_noticed(
        collection: tuple[Path, dict[str, bytes]], workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import coverlens.sources.music as music

    root, art = collection
    run_catalog(workspace, root)
    first = workspace.catalog_file.read_bytes()

    def no_tag_reads(path: Path) -> dict:
        raise AssertionError(f"tags of {path} read again although unchanged")

    monkeypatch.setattr(music, "track_facts", no_tag_reads)
    again = run_catalog(workspace, root)
    assert again.read == 0 and workspace.catalog_file.read_bytes() == first
    monkeypatch.undo()
    write_track(root / "Hip/Beats/01.m4a", genres=["Jazz"], album="Beats", artist="MC Test",
                pictures=[(art["beats"], FRONT)])
    changed = run_catalog(workspace, root)
    assert changed.read == 1
    assert load_catalog(workspace).set_index("path").loc["Hip/Beats/01.m4a", "genre"] == "Jazz"


def test_genre_map_and_inspect_counts(collection: tuple[Path, dict[str, bytes]], workspace: Workspace,
                                      tmp_path: Path) -> None:
    root, _ = collection
    mapping = tmp_path / "genres.csv"
    mapping.write_text("raw,genre\nsoul,R&B\nfunk,R&B\nhip-hop,Rap\n")
    run_catalog(workspace, root, genre_map=mapping)
    frame = load_catalog(workspace)
    assert sorted(frame.loc[frame["path"].str.startswith("Mixed/"), "genre"]) == ["R&B", "R&B"]
    assert frame.set_index("path").loc["Hip/Beats/01.m4a", "genre"] == "Rap"
    view = overview(frame)
    assert "" not in view.genres and view.unlabelled == {"files": 2, "distinct": 1, "unreadable": 1}
    assert view.genres["R&B"]["distinct"] == 2
    run_catalog(workspace)  # the recorded source and genre map are used again
    assert load_catalog(workspace).set_index("path").loc["Hip/Beats/01.m4a", "genre"] == "Rap"


def test_unlabelled_covers_are_never_trained_or_tested_on(collection: tuple[Path, dict[str, bytes]],
                                                          workspace: Workspace) -> None:
    from coverlens.catalog import labelled_covers
    from coverlens.classifier.data import training_rows

    root, _ = collection
    run_catalog(workspace, root)
    covers = distinct_covers(load_catalog(workspace))
    unlabelled = covers[covers["genre"] == ""]
    assert len(unlabelled) == 1 and set(unlabelled["split"]) == {"unlabelled"}
    assert set(covers.loc[covers["genre"] != "", "split"]) <= {"train", "test"}
    assert "" not in set(training_rows(covers)["genre"]) and "" not in set(labelled_covers(covers)["genre"])
    assert not set(unlabelled["id"]) & set(covers.loc[covers["split"].isin(["train", "test"]), "id"])


def test_forced_source_and_detection(tmp_path: Path, small_library: Path) -> None:
    assert detect_source(small_library) == "folders"
    write_track(tmp_path / "deep/a/b/track.mp3", genres=["Rock"], pictures=[(cover_jpeg(1), FRONT)])
    assert detect_source(tmp_path / "deep") == "music"
    workspace = Workspace(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="no cover images"):  # as genre folders, an MP3 is no image
        run_catalog(workspace, tmp_path / "deep", source="folders")
    assert run_catalog(workspace, tmp_path / "deep").files == 1
