"""The Calibre source, on a library built in code with Calibre's own table names."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from coverlens.catalog import load_catalog, run_catalog
from coverlens.errors import LibraryError
from coverlens.sample_music import cover_jpeg
from coverlens.sources import detect_source
from coverlens.sources.calibre import read_calibre
from coverlens.sources.genres import GenreRules
from coverlens.workspace import Workspace
from test_music_source import tree_digest

SCHEMA = """
CREATE TABLE books (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL DEFAULT 'Unknown' COLLATE NOCASE,
    sort TEXT COLLATE NOCASE, timestamp TIMESTAMP, pubdate TIMESTAMP, series_index REAL NOT NULL DEFAULT 1.0,
    author_sort TEXT COLLATE NOCASE, isbn TEXT DEFAULT '', lccn TEXT DEFAULT '', path TEXT NOT NULL DEFAULT '',
    flags INTEGER NOT NULL DEFAULT 1, uuid TEXT, has_cover BOOL DEFAULT 0, last_modified TIMESTAMP);
CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, sort TEXT COLLATE NOCASE,
    link TEXT NOT NULL DEFAULT '', UNIQUE(name));
CREATE TABLE books_authors_link (id INTEGER PRIMARY KEY, book INTEGER NOT NULL, author INTEGER NOT NULL,
    UNIQUE(book, author));
CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, link TEXT NOT NULL DEFAULT '',
    UNIQUE (name));
CREATE TABLE books_tags_link (id INTEGER PRIMARY KEY, book INTEGER NOT NULL, tag INTEGER NOT NULL,
    UNIQUE(book, tag));
"""

BOOKS = [  # title, authors, tags, cover
    ("Dune", ["Frank Herbert"], ["Science Fiction", "Fiction"], "jpeg"),
    ("Good Omens", ["Terry Pratchett", "Neil Gaiman"], ["fantasy; humour"], "jpeg"),
    ("Plain Notes", ["Anon"], [], "jpeg"),
    ("No Cover", ["Someone"], ["Poetry"], None),
    ("Placeholder Tags", ["Writer"], ["General", "Unknown"], "jpeg"),
    ("Broken Cover", ["Writer"], ["History"], "garbage"),
]


def build_calibre(root: Path) -> dict[str, bytes]:
    root.mkdir(parents=True)
    covers: dict[str, bytes] = {}
    db = sqlite3.connect(root / "metadata.db")
    db.executescript(SCHEMA)
    tag_ids: dict[str, int] = {}
    for number, (title, authors, tags, cover) in enumerate(BOOKS, start=1):
        path = f"{authors[0]}/{title} ({number})"
        db.execute("INSERT INTO books (id, title, path, has_cover) VALUES (?, ?, ?, ?)",
                   (number, title, path, cover is not None))
        for name in authors:
            db.execute("INSERT OR IGNORE INTO authors (name, sort) VALUES (?, ?)", (name, name))
            author = db.execute("SELECT id FROM authors WHERE name = ?", (name,)).fetchone()[0]
            db.execute("INSERT INTO books_authors_link (book, author) VALUES (?, ?)", (number, author))
        for name in tags:
            tag_ids.setdefault(name, len(tag_ids) + 1)
            db.execute("INSERT OR IGNORE INTO tags (id, name) VALUES (?, ?)", (tag_ids[name], name))
            db.execute("INSERT INTO books_tags_link (book, tag) VALUES (?, ?)", (number, tag_ids[name]))
        folder = root / path
        folder.mkdir(parents=True)
        (folder / f"{title}.epub").write_bytes(b"PK\x03\x04 not really an epub")
        if cover is not None:
            data = cover_jpeg(number) if cover == "jpeg" else b"<html>not a picture</html>"
            (folder / "cover.jpg").write_bytes(data)
            covers[title] = data
    db.commit()
    db.close()
    return covers


@pytest.fixture
def calibre(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "Calibre Library"
    return root, build_calibre(root)


def test_catalog_rows_of_a_calibre_library(calibre: tuple[Path, dict[str, bytes]], workspace: Workspace) -> None:
    root, covers = calibre
    assert detect_source(root) == "calibre"
    before = tree_digest(root)
    summary = run_catalog(workspace, root)
    frame = load_catalog(workspace)
    got = {r.path: (r.genre, r.status, r.title, r.creator, r.split == "unlabelled") for r in frame.itertuples()}
    assert got == {
        "Frank Herbert/Dune (1)/cover.jpg": ("Science Fiction", "ok", "Dune", "Frank Herbert", False),
        "Terry Pratchett/Good Omens (2)/cover.jpg": ("Fantasy", "ok", "Good Omens",
                                                     "Terry Pratchett & Neil Gaiman", False),
        "Anon/Plain Notes (3)/cover.jpg": ("", "ok", "Plain Notes", "Anon", True),
        "Writer/Placeholder Tags (5)/cover.jpg": ("", "ok", "Placeholder Tags", "Writer", True),
        "Writer/Broken Cover (6)/cover.jpg": ("History", "unreadable", "Broken Cover", "Writer", False),
    }
    rows = frame.set_index("path")
    assert rows.loc["Frank Herbert/Dune (1)/cover.jpg", "id"] == hashlib.md5(covers["Dune"]).hexdigest()
    assert rows.loc["Frank Herbert/Dune (1)/cover.jpg", "raw_genre"] == "Science Fiction | Fiction"
    assert "not an image" in rows.loc["Writer/Broken Cover (6)/cover.jpg", "reason"]
    assert summary.source == "calibre" and summary.unlabelled == 2
    assert summary.no_cover == ["Someone/No Cover (4) (book 4)"]
    assert run_catalog(workspace).read == 0  # unchanged covers are not read again
    assert tree_digest(root) == before  # no journal, no WAL, no byte changed


def test_genre_map_json(calibre: tuple[Path, dict[str, bytes]], workspace: Workspace, tmp_path: Path) -> None:
    root, _ = calibre
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"Science Fiction": "SF", "fiction": None, "History": ""}))
    run_catalog(workspace, root, genre_map=mapping)
    rows = load_catalog(workspace).set_index("path")
    assert rows.loc["Frank Herbert/Dune (1)/cover.jpg", "genre"] == "SF"
    assert rows.loc["Writer/Broken Cover (6)/cover.jpg", "genre"] == ""


def test_locked_database_is_named(calibre: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = calibre
    writer = sqlite3.connect(root / "metadata.db", isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # what Calibre holds while it writes
    try:
        with pytest.raises(LibraryError, match=r"metadata\.db: the database is locked \(Calibre is writing"):
            read_calibre(root, GenreRules(), timeout=0.05)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_missing_damaged_and_foreign_databases(tmp_path: Path, workspace: Workspace) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match=r"metadata\.db not found: .* is not a Calibre library"):
        run_catalog(workspace, tmp_path / "empty", source="calibre")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "metadata.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="not a readable SQLite database"):
        run_catalog(workspace, tmp_path / "garbage")
    (tmp_path / "foreign").mkdir()
    sqlite3.connect(tmp_path / "foreign" / "metadata.db").executescript("CREATE TABLE x (a); ")
    with pytest.raises(LibraryError, match="not a Calibre library database .*no such table: books"):
        run_catalog(workspace, tmp_path / "foreign")
    assert not workspace.catalog_file.exists()
