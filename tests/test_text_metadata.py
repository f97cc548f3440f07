"""The library's metadata text (album/artist tags, book titles/authors) in the text store and the text model:
ranked with the words read on the covers, following the library (renames and deletes), never holding a
genre tag, an old text.db opening and gaining it, and the text model learning a genre from it alone."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cli_calls import cli
from coverlens.sample_music import cover_jpeg, write_track
from coverlens.text.metadata import combine, metadata_by_cover, sync_metadata
from coverlens.text.ocr import TextLine
from coverlens.text.store import CoverText, TextStore
from coverlens.workspace import Workspace

BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))

# the text store as coverlens wrote it before metadata existed (schema 1, no metadata tables)
OLD_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE covers(id TEXT PRIMARY KEY, reader TEXT NOT NULL, lines TEXT NOT NULL, text TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '');
CREATE VIRTUAL TABLE covers_fts USING fts5(text, content='covers', content_rowid='rowid', tokenize='trigram');
CREATE TRIGGER covers_ai AFTER INSERT ON covers BEGIN
    INSERT INTO covers_fts(rowid, text) VALUES (new.rowid, new.text); END;
CREATE TRIGGER covers_ad AFTER DELETE ON covers BEGIN
    INSERT INTO covers_fts(covers_fts, rowid, text) VALUES ('delete', old.rowid, old.text); END;
CREATE TRIGGER covers_au AFTER UPDATE ON covers BEGIN
    INSERT INTO covers_fts(covers_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO covers_fts(rowid, text) VALUES (new.rowid, new.text); END;
INSERT INTO meta VALUES ('schema', '1');
"""


def record(cover_id: str, text: str) -> CoverText:
    return CoverText.read(cover_id, "r1", [TextLine(line, BOX, 0.9) for line in text.splitlines()])


def old_text_db(path: Path, texts: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for cid, text in texts.items():
        rec = record(cid, text)
        db.execute("INSERT INTO covers VALUES (?, ?, ?, ?, '')",
                   (cid, rec.reader, json.dumps([line.to_json() for line in rec.lines]), rec.text))
    db.commit()
    db.close()


def test_an_old_text_db_is_read_as_it_is_then_upgraded_in_place_keeping_its_words(tmp_path: Path) -> None:
    path = tmp_path / "text" / "text.db"
    old_text_db(path, {"a1": "Iron Maiden\nPowerslave", "b2": "Miles Davis"})
    with TextStore(path, readonly=True) as store:  # a reader never changes it
        before = store.dump()
        assert [h.id for h in store.find("maiden")] == ["a1"] and store.metadata() == {}
    with TextStore(path) as store:  # the first writable open adds the metadata tables
        assert store.dump() == before
        store.put_metadata({"b2": "Kind of Blue\nMiles Davis"})
        hits = store.find("kind of blue")
        assert [(h.id, h.kind) for h in hits] == [("b2", "metadata")]
        assert hits[0].text == "Miles Davis" and hits[0].metadata_snippet == "[Kind of Blue] / Miles Davis"
    db = sqlite3.connect(path)
    assert dict(db.execute("SELECT key, value FROM meta")) == {"schema": "1", "metadata": "1"}
    db.close()


def test_words_and_metadata_rank_together_and_each_hit_says_where_it_matched(tmp_path: Path) -> None:
    with TextStore(tmp_path / "text.db") as store:
        store.put([record("a1", "HARBOUR LIGHTS\nlive"), record("b2", "greatest hits"), record("c3", "")])
        store.put_metadata({"a1": "Harbour Lights\nThe Quays", "c3": "Harbour Master\nSea Band",
                            "d4": "Quiet Songs"})
        hits = store.find("harbour")
        assert [(h.id, h.kind) for h in hits] == [("a1", "words+metadata"), ("c3", "metadata")]
        assert hits[0].score > hits[1].score and hits[0].snippet.startswith("[HARBOUR]")
        assert store.find("sea bnd")[0].id == "c3"  # typos tolerated in metadata too
        assert [h.id for h in store.find("harbour", metadata=False)] == ["a1"]
        assert [h.id for h in store.find("harbour", limit=1, offset=1)] == ["c3"]
        assert [h.id for h in store.find("qu")][:2] == ["d4", "a1"]  # 2 letters: LIKE, shortest first
        written, removed = sync_metadata(store, {"a1": "Harbour Lights\nThe Quays", "c3": "Open Water\nSea Band"})
        assert (written, removed) == (1, 1) and store.metadata() == {"a1": "Harbour Lights\nThe Quays",
                                                                     "c3": "Open Water\nSea Band"}
        assert [h.id for h in store.find("harbour")] == ["a1"]
        store.delete(["a1"])  # a cover gone from the catalog loses its words and its metadata
        assert store.find("harbour") == [] and "a1" not in store.metadata()


def test_metadata_of_a_cover_joins_its_copies_and_never_holds_the_genre() -> None:
    rows = [{"id": "x", "status": "ok", "title": "Blue", "creator": "Trio", "genre": "Jazz", "raw_genre": "jazz"},
            {"id": "x", "status": "ok", "title": "Blue (reissue)", "creator": "Trio", "genre": "Jazz"},
            {"id": "x", "status": "ok", "title": "Blue", "creator": "Trio", "genre": "Jazz"},
            {"id": "y", "status": "ok", "title": "", "creator": "", "genre": "Rock"},
            {"id": "", "status": "unreadable", "title": "Broken", "creator": ""}]
    assert metadata_by_cover(rows) == {"x": "Blue\nTrio\nBlue (reissue)\nTrio"}
    assert combine(["x", None, "y"], ["BLUE", "words", ""], {"x": "Blue\nTrio"}) == ["BLUE\nBlue\nTrio", "words", ""]


# -- through the CLI, on a music collection built with mutagen --------------------------------------------

ALBUMS = {  # folder: (album, artist, genre tag)
    "Pablo/Zanzibar": ("Zanzibar Nights", "Pablo Quintet", "Jazz"),
    "Thunder/Road": ("Thunder Road", "Asphalt", "Rock"),
    "Velvet/Morning": ("Velvet Morning", "Sunny Lane", "Pop"),
}


def write_album(root: Path, folder: str, album: str, artist: str, genre: str, seed: int) -> None:
    write_track(root / folder / "01.mp3", genres=[genre], album=album, artist=artist)
    (root / folder / "folder.jpg").write_bytes(cover_jpeg(seed, size=64))  # a picture OCR opens, no words


def find(capsys: pytest.CaptureFixture[str], query: str, ws: str) -> list[dict[str, Any]]:
    code, out, err = cli(capsys, "find", query, "--json", "-w", ws)
    assert code == 0, err
    return json.loads(out)


def test_find_a_cover_by_its_album_title_and_follow_renames_and_deletes(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from coverlens.text.stage import text_store_for

    music, ws = tmp_path / "music", str(tmp_path / "ws")
    for seed, (folder, (album, artist, genre)) in enumerate(ALBUMS.items()):
        write_album(music, folder, album, artist, genre, seed)
    assert cli(capsys, "catalog", str(music), "-w", ws)[0] == 0
    code, _, err = cli(capsys, "index", "--text", "-w", ws)
    assert code == 0 and "metadata text of 3 covers (3 written, 0 removed)" in err, err

    found = find(capsys, "zanzibar", ws)
    assert [Path(row["path"]).parent.as_posix() for row in found] == ["Pablo/Zanzibar"]
    assert found[0]["matched_in"] == "metadata" and found[0]["metadata"] == "Zanzibar Nights\nPablo Quintet"
    assert found[0]["metadata_matched"].startswith("[Zanzibar]") and found[0]["genre"] == "Jazz"
    assert find(capsys, "quintett", ws)[0]["path"] == found[0]["path"]  # artist words, with a typo
    code, out, _ = cli(capsys, "find", "velvet", "-w", ws)
    assert code == 0 and "metadata: [Velvet] Morning / Sunny Lane" in out
    with text_store_for(Path(ws), readonly=True) as store:  # genre tags are never metadata text
        assert not any(g.lower() in text.lower() for text in store.metadata().values() for g in ("jazz", "pop"))

    # the album is re-tagged (same picture) and another is deleted: stale hits go at once, and from the store
    # at the next index
    write_track(music / "Pablo/Zanzibar/01.mp3", genres=["Jazz"], album="Harbour Lights", artist="Pablo Quintet")
    shutil.rmtree(music / "Thunder")
    assert cli(capsys, "catalog", str(music), "-w", ws)[0] == 0
    assert find(capsys, "zanzibar", ws) == []  # checked against the catalog before the next index
    code, _, err = cli(capsys, "index", "--text", "-w", ws)
    assert code == 0 and "metadata text of 2 covers (1 written, 1 removed)" in err, err
    with text_store_for(Path(ws), readonly=True) as store:
        texts = store.metadata()
    assert sorted(texts.values()) == ["Harbour Lights\nPablo Quintet", "Velvet Morning\nSunny Lane"]
    assert find(capsys, "zanzibar", ws) == [] and find(capsys, "thunder", ws) == []
    assert [row["matched_in"] for row in find(capsys, "harbour lights", ws)] == ["metadata"]


# -- the text model, on a Calibre library whose covers carry no words --------------------------------------

def build_books(root: Path, per_genre: int = 14) -> None:
    """Noise covers (no words to read); the genre shows only in the titles, never through a tag word."""
    from test_calibre_source import SCHEMA

    root.mkdir(parents=True)
    db = sqlite3.connect(root / "metadata.db")
    db.executescript(SCHEMA)
    kinds = {"Fantasy": ("Dragon", "Wizard"), "Business": ("Ledger", "Profit")}
    db.executemany("INSERT INTO tags (id, name) VALUES (?, ?)", [(1, "Fantasy"), (2, "Business")])
    number = 0
    for tag, words in enumerate(kinds.values(), start=1):  # tag ids as inserted above
        for n in range(per_genre):
            number += 1
            title, path = f"The {words[n % 2]} of Book {number}", f"Author {number}/Book ({number})"
            db.execute("INSERT INTO books (id, title, path, has_cover) VALUES (?, ?, ?, 1)", (number, title, path))
            db.execute("INSERT INTO books_tags_link (book, tag) VALUES (?, ?)", (number, tag))
            (root / path).mkdir(parents=True)
            (root / path / "cover.jpg").write_bytes(cover_jpeg(100 + number, size=48))
    db.commit()
    db.close()


def test_the_text_model_learns_a_genre_carried_only_by_the_metadata(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from coverlens.catalog import distinct_covers, load_catalog, run_catalog
    from coverlens.classifier import TrainConfig, train_classifier
    from coverlens.classifier.predict import load_classifier
    from coverlens.text.model import TextModelSettings
    from coverlens.text.signals import TextGenreSignal, shared_reader
    from coverlens.text.stage import read_workspace_text
    from coverlens.text.training import load_text_signal
    from coverlens.text.workspace_training import train_text_signal

    build_books(tmp_path / "books")
    workspace = Workspace(tmp_path / "ws")
    run_catalog(workspace, tmp_path / "books")
    summary = read_workspace_text(workspace.root, workers=1)
    assert summary.read == summary.covers == 28 and summary.metadata == 28
    train_classifier(workspace, TrainConfig(image_size=32, epochs=1, frozen_epochs=0, batch_size=8,
                                            pretrained=False), progress=False)
    classifier = load_classifier(workspace)

    words_only = train_text_signal(workspace, classifier, settings=TextModelSettings(metadata=False))
    assert words_only.skipped and "0 of" in words_only.skipped  # the covers say nothing
    monkeypatch.setenv("COVERLENS_METADATA_TEXT", "0")  # the user's switch: the words alone
    assert "0 of" in train_text_signal(workspace, classifier).skipped
    monkeypatch.delenv("COVERLENS_METADATA_TEXT")

    trained = train_text_signal(workspace, classifier)  # the default reads the metadata
    assert not trained.skipped and trained.covers_with_metadata == trained.covers == trained.covers_with_text
    signal = TextGenreSignal(load_text_signal(workspace.model_dir), workspace, shared_reader())
    assert signal.signal.model.settings.metadata
    covers = distinct_covers(load_catalog(workspace))
    test = covers[covers["split"] == "test"]
    assert len(test) >= 4 and set(test["genre"]) == {"Fantasy", "Business"}
    proba = signal.predict_covers(list(test["id"]), [None] * len(test))
    predicted = [signal.classes[i] for i in np.argmax(proba, axis=1)]
    assert predicted == list(test["genre"])
    # a picture from outside the library has no metadata: the model sees its words alone
    assert signal.with_metadata([None], ["words"]) == ["words"]

    # the service's evidence for a library cover (predict, the app's search) says the metadata was read
    from coverlens.service import CoverlensService

    service = CoverlensService(workspace)
    try:
        first = test.iloc[0]
        evidence = service.read_words(tmp_path / "books" / first["path"])
    finally:
        service.close()
    assert evidence.words == [] and evidence.scores[0].genre == first["genre"]
    assert any(note.startswith("the text model also read this cover's metadata: The ") for note in evidence.notes)
