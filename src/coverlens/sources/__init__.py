"""Library sources: where covers come from, and the one way to read a cover.

    kind = detect_source(root, manifest)              # "folders" | "csv" | "music" | "calibre"
    listing = list_source(kind, root, manifest=..., genre_map=..., cache_dir=...)
    data = read_cover(root, entry.relpath, entry.source)
    text = metadata_text(catalog_row)                 # album/artist or book/author words, for text models

Detection: a `--manifest` means csv; `metadata.db` at the root means a Calibre library; an audio
file among the first entries of the tree means a music collection; anything else is genre folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from coverlens.errors import LibraryError, WorkspaceError
from coverlens.sources.base import FILE, KINDS, LibraryEntry, LibraryListing, is_hidden_or_system
from coverlens.sources.covers import cover_name, open_cover, read_cover
from coverlens.sources.genres import GenreRules, load_genre_map
from coverlens.sources.metadata import metadata_text

__all__ = ["FILE", "KINDS", "GenreRules", "LibraryEntry", "LibraryListing", "cover_name", "detect_source",
           "list_source", "metadata_text", "open_cover", "read_cover"]

DETECT_LIMIT = 5000  # directory entries looked at before deciding a tree holds no audio


def _has_audio(root: Path) -> bool:
    from coverlens.sources.tags import AUDIO_EXTENSIONS

    pending, seen, looked = [str(root)], set[tuple[int, int]](), 0
    while pending and looked < DETECT_LIMIT:  # breadth first: audio sits 1-3 levels down
        folder = pending.pop(0)
        try:
            info = os.stat(folder)
            with os.scandir(folder) as listing:
                children = list(listing)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen:  # a symlink loop
            continue
        seen.add((info.st_dev, info.st_ino))
        for child in children:
            looked += 1
            if is_hidden_or_system(child.name):
                continue
            if os.path.splitext(child.name)[1].lower() in AUDIO_EXTENSIONS:
                return True
            try:
                if child.is_dir():
                    pending.append(child.path)
            except OSError:
                continue
    return False


def detect_source(root: Path | None, manifest: Path | None = None) -> str:
    if manifest is not None:
        return "csv"
    if root is None:
        raise WorkspaceError("give a library folder or --manifest FILE.csv")
    root = Path(root)
    if (root / "metadata.db").is_file():
        return "calibre"
    if root.is_dir() and _has_audio(root):
        return "music"
    return "folders"


def _relabel(listing: LibraryListing, rules: GenreRules) -> LibraryListing:
    """Folder and manifest labels through the user's mapping; the original is kept as raw_genre."""
    from dataclasses import replace

    if rules.mapping:
        relabelled = []
        for entry in listing.entries:
            genre = rules.label(entry.genre)
            relabelled.append(replace(entry, genre=genre, raw_genre=entry.genre if genre != entry.genre else ""))
        listing.entries = relabelled
    return listing


def list_source(kind: str, root: Path | None, *, manifest: Path | None = None, genre_map: Path | None = None,
                cache_dir: Path | None = None) -> LibraryListing:
    """The covers of the library, as the source `kind` lists them (read only)."""
    mapping = load_genre_map(genre_map) if genre_map is not None else {}
    if kind == "csv":
        from coverlens.sources.manifest import read_manifest

        if manifest is None:
            raise WorkspaceError("--source csv needs --manifest FILE.csv")
        return _relabel(read_manifest(manifest, root), GenreRules(mapping, normalise=False))
    if root is None:
        raise WorkspaceError(f"--source {kind} needs a library folder")
    if kind == "folders":
        from coverlens.sources.folders import scan_folder

        return _relabel(scan_folder(root), GenreRules(mapping, normalise=False))
    if kind == "music":
        from coverlens.sources.music import read_music

        return read_music(root, GenreRules(mapping), cache_file=cache_dir / "music-tracks.json" if cache_dir else None)
    if kind == "calibre":
        from coverlens.sources.calibre import read_calibre

        return read_calibre(root, GenreRules(mapping))
    raise LibraryError(f"unknown library source {kind!r} (choose one of: {', '.join(KINDS)})")
