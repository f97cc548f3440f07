"""Genre folders: LIBRARY/<genre>/.../<image>. Images directly under LIBRARY are unlabelled covers."""

from __future__ import annotations

import os
from pathlib import Path

from coverlens.errors import LibraryError
from coverlens.images import IMAGE_EXTENSIONS
from coverlens.sources.base import LibraryEntry, LibraryListing, is_hidden_or_system


def scan_folder(root: Path) -> LibraryListing:
    """List image files under root/<genre>/..., following symlinks but never a loop.

    Uses os.scandir and plain strings: on a 30k-file library this walk is most of an unchanged
    re-catalog, so it avoids Path objects and a second stat per file.
    """
    root = Path(root)
    if not root.is_dir():
        raise LibraryError(f"library folder {root} does not exist or is not a folder")
    entries: list[LibraryEntry] = []
    skipped: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    genre_folders: list[str] = []
    pending = [(str(root), "")]
    while pending:
        folder, rel_dir = pending.pop()
        try:
            stat = os.stat(folder)
            with os.scandir(folder) as listing:
                children = sorted(listing, key=lambda e: e.name)
        except OSError:
            skipped.append(rel_dir or ".")
            continue
        if (stat.st_dev, stat.st_ino) in seen_dirs:  # a symlink loop, or a folder reached twice
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        genre = rel_dir.split("/", 1)[0]  # "" at the top: a cover outside any genre folder is unlabelled
        for child in children:
            name = child.name
            if is_hidden_or_system(name):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            is_cover = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            try:
                if child.is_dir():
                    pending.append((child.path, rel))
                    if not rel_dir:
                        genre_folders.append(name)
                    continue
                info = child.stat()
            except OSError:
                if is_cover:  # a symlink loop or a dangling link named like a cover: the catalog names it
                    entries.append(LibraryEntry(rel, genre))
                else:
                    skipped.append(rel)
                continue
            if not is_cover:
                skipped.append(rel)
            else:
                entries.append(LibraryEntry(rel, genre, info.st_size, info.st_mtime_ns))
    entries.sort(key=lambda e: e.relpath)
    filled = {entry.genre for entry in entries}  # a genre folder without covers is usually a copy gone wrong
    return LibraryListing(root.resolve(), entries, skipped, sorted(g for g in genre_folders if g not in filled))
