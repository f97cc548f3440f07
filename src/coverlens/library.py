"""Find the covers of a library: a folder with one sub-folder per genre, or a CSV manifest.

Only reads directory entries and the manifest; decoding images is the catalog's job.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from coverlens.errors import LibraryError, ManifestError
from coverlens.images import IMAGE_EXTENSIONS

SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})
MANIFEST_REQUIRED = ("path", "genre")
# Columns a manifest may carry besides path and genre (facts a dataset often lists); not trusted.
MANIFEST_OPTIONAL = frozenset({"width", "height", "format", "mode", "md5", "sha256", "size", "bytes"})


@dataclass(frozen=True)
class LibraryEntry:
    """One file the library lists: its path relative to the library root, and its genre."""

    relpath: str
    genre: str
    size: int | None = None  # size and mtime when the listing already knows them (folder scans)
    mtime_ns: int | None = None


@dataclass
class LibraryListing:
    root: Path
    entries: list[LibraryEntry]
    skipped: list[str]  # relative paths ignored (system files, non-image extensions, loose files)
    empty_genres: list[str] = field(default_factory=list)  # genre folders holding no cover-named file


def is_hidden_or_system(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_FILES or name.startswith("._")


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
        for child in children:
            name = child.name
            if is_hidden_or_system(name):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            is_cover = bool(rel_dir) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            try:
                if child.is_dir():
                    pending.append((child.path, rel))
                    if not rel_dir:
                        genre_folders.append(name)
                    continue
                info = child.stat()
            except OSError:
                if is_cover:  # a symlink loop or a dangling link named like a cover: the catalog names it
                    entries.append(LibraryEntry(rel, rel.split("/", 1)[0]))
                else:
                    skipped.append(rel)
                continue
            if not is_cover:
                skipped.append(rel)  # a loose file at the top has no genre folder
            else:
                entries.append(LibraryEntry(rel, rel.split("/", 1)[0], info.st_size, info.st_mtime_ns))
    entries.sort(key=lambda e: e.relpath)
    filled = {entry.genre for entry in entries}  # a genre folder without covers is usually a copy gone wrong
    return LibraryListing(root.resolve(), entries, skipped, sorted(g for g in genre_folders if g not in filled))


def read_manifest(manifest: Path, root: Path | None = None) -> LibraryListing:
    """Read a `path,genre` CSV. Paths are relative to `root` (default: the manifest's folder).

    Every bad row is collected and reported at once, so a person can fix them in one pass.
    """
    manifest = Path(manifest)
    base = (root or manifest.parent).resolve()
    try:
        handle = open(manifest, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ManifestError(manifest, [f"cannot open: {exc.strerror or exc}"]) from exc
    problems: list[str] = []
    entries: list[LibraryEntry] = []
    with handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in MANIFEST_REQUIRED if c not in columns]
        unknown = [c for c in columns if c not in MANIFEST_REQUIRED and c not in MANIFEST_OPTIONAL]
        if missing:
            problems.append(f"missing column(s): {', '.join(missing)} (needs: path,genre)")
        if unknown:
            problems.append(
                f"unknown column(s): {', '.join(unknown)} (allowed: path, genre, "
                f"{', '.join(sorted(MANIFEST_OPTIONAL))})"
            )
        if problems:
            raise ManifestError(manifest, problems)
        seen: dict[str, int] = {}
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            rel, genre = row.get("path", ""), row.get("genre", "")
            if not rel:
                problems.append(f"row {line}: empty path")
                continue
            if not genre:
                problems.append(f"row {line}: {rel}: empty genre")
                continue
            full = (base / rel).resolve()
            try:
                relpath = full.relative_to(base).as_posix()
            except ValueError:
                problems.append(f"row {line}: {rel}: outside the library root {base}")
                continue
            if relpath in seen:
                problems.append(f"row {line}: {rel}: duplicate of row {seen[relpath]}")
                continue
            seen[relpath] = line
            if not full.is_file():
                problems.append(f"row {line}: {rel}: file not found")
                continue
            entries.append(LibraryEntry(relpath, genre))
    if problems:
        raise ManifestError(manifest, problems)
    if not entries:
        raise ManifestError(manifest, ["no rows"])
    return LibraryListing(base, entries, [])
