"""What every library source produces: a listing of covers, each with where its picture lives.

A source only lists; decoding the pictures is the catalog's job (through `read_cover`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})
FILE = "file"  # `source` of a cover that is a whole image file (everything but embedded pictures)
KINDS = ("folders", "csv", "music", "calibre")


@dataclass(frozen=True)
class LibraryEntry:
    """One cover the library lists.

    `relpath` is the file holding the picture, relative to the library root; `source` says where in
    that file the picture is ("file", or a tag frame such as "APIC:0"). `genre` is "" for an
    unlabelled cover. `problem` is set when the file could not be listed properly (unreadable
    tags): the catalog records it as unreadable without reading it again.
    """

    relpath: str
    genre: str
    size: int | None = None  # size and mtime when the listing already knows them (scans)
    mtime_ns: int | None = None
    source: str = FILE
    raw_genre: str = ""  # the genre text as the library wrote it, when it differs from `genre`
    title: str = ""  # album or book title, where the source has one
    creator: str = ""  # artist or author
    problem: str = ""


@dataclass
class LibraryListing:
    root: Path
    entries: list[LibraryEntry]
    skipped: list[str]  # relative paths ignored (system files, non-cover files)
    empty_genres: list[str] = field(default_factory=list)  # genre folders holding no cover-named file
    kind: str = "folders"
    no_cover: list[str] = field(default_factory=list)  # albums or books that have no picture at all


def is_hidden_or_system(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_FILES or name.startswith("._")
