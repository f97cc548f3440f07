"""A Calibre ebook library: `metadata.db` (SQLite, opened read-only) and `<book path>/cover.jpg`.

Tables read (Calibre's own names): books (id, title, path), authors, books_authors_link, tags,
books_tags_link. A book's genre is its first tag (link order) that survives the genre rules; its
title and authors ("A & B", Calibre's way) are kept. Books without a cover.jpg are listed in
`no_cover`. The database is opened with `mode=ro`, so neither it nor a journal is ever written.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections import defaultdict
from pathlib import Path

from coverlens.errors import LibraryError
from coverlens.sources.base import LibraryEntry, LibraryListing
from coverlens.sources.genres import GenreRules

DATABASE = "metadata.db"
COVER = "cover.jpg"
BOOKS = "SELECT id, title, path FROM books ORDER BY id"
AUTHORS = ("SELECT l.book, a.name FROM books_authors_link l JOIN authors a ON a.id = l.author "
           "ORDER BY l.book, l.id")
TAGS = "SELECT l.book, t.name FROM books_tags_link l JOIN tags t ON t.id = l.tag ORDER BY l.book, l.id"


def _query(database: Path, timeout: float) -> tuple[list[tuple[int, str, str]], dict[int, list[str]],
                                                   dict[int, list[str]]]:
    uri = f"file:{urllib.parse.quote(str(database))}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        raise LibraryError(f"{database}: cannot open the Calibre database ({exc})") from exc
    try:
        books = connection.execute(BOOKS).fetchall()
        authors: dict[int, list[str]] = defaultdict(list)
        for book, name in connection.execute(AUTHORS):
            authors[book].append(name or "")
        tags: dict[int, list[str]] = defaultdict(list)
        for book, name in connection.execute(TAGS):
            tags[book].append(name or "")
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise LibraryError(f"{database}: the database is locked (Calibre is writing to it); wait for "
                               "Calibre to finish or close it, then run the catalog again") from exc
        if "no such table" in text or "no such column" in text:
            raise LibraryError(f"{database}: not a Calibre library database ({text})") from exc
        raise LibraryError(f"{database}: cannot read the Calibre database ({text})") from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database", a damaged file
        raise LibraryError(f"{database}: not a readable SQLite database ({exc})") from exc
    finally:
        connection.close()
    return books, authors, tags


def read_calibre(root: Path, rules: GenreRules, *, timeout: float = 5.0) -> LibraryListing:
    """List the cover of every book of the Calibre library at `root` (read only)."""
    root = Path(root)
    database = root / DATABASE
    if not database.is_file():
        raise LibraryError(f"{database} not found: {root} is not a Calibre library (a Calibre library "
                           "folder holds metadata.db; or name another source with --source)")
    root = root.resolve()
    books, authors, tags = _query(database, timeout)
    entries: list[LibraryEntry] = []
    no_cover: list[str] = []
    skipped: list[str] = []
    for book_id, title, book_path in books:
        relpath = f"{(book_path or '').strip('/')}/{COVER}"
        full = (root / relpath).resolve()
        if not book_path or not full.is_relative_to(root):
            skipped.append(f"book {book_id}: path {book_path!r} is outside the library")
            continue
        try:
            info = os.stat(full)
        except OSError:
            no_cover.append(f"{book_path} (book {book_id})")
            continue
        raw = tags.get(book_id, [])
        genre = rules.first(raw)
        raw_text = " | ".join(raw)[:200]
        entries.append(LibraryEntry(
            relpath, genre, info.st_size, info.st_mtime_ns, raw_genre=raw_text if raw_text != genre else "",
            title=title or "", creator=" & ".join(authors.get(book_id, [])),
        ))
    entries.sort(key=lambda e: e.relpath)
    return LibraryListing(root, entries, skipped, kind="calibre", no_cover=sorted(no_cover))
