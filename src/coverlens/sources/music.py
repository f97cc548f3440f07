"""A music collection: audio files with tags, one cover per album.

An album is the tracks of one folder that share an album tag (tracks without one form the
folder's album). Its cover, in order of preference:

1. a cover file beside the tracks (cover.*, then folder.*, then front.*; any image extension),
   when the folder holds one album: such files are usually the largest copy of the art;
2. the embedded picture of the album's first track (path order) that has one, a front cover
   (picture type 3) before any other picture;
3. the folder's cover file, shared when the folder holds several albums without pictures.

Albums that resolve to the same picture become one cover. Albums with no picture are listed in
`no_cover`. Genre: `album_genre` over the tracks' normalised genres (see genres.py); the album
title and artist (album artist, else the most common track artist) are kept.

Tags of every track are kept in a cache file (keyed by size and mtime), so an unchanged
collection is listed from one directory walk and one JSON read.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coverlens.errors import LibraryError
from coverlens.images import IMAGE_EXTENSIONS
from coverlens.sources.base import FILE, LibraryEntry, LibraryListing, is_hidden_or_system
from coverlens.sources.genres import GenreRules, album_genre
from coverlens.sources.tags import AUDIO_EXTENSIONS, FRONT_COVER, TagProblem, track_facts
from coverlens.workspace import atomic_path

CACHE_VERSION = 1
COVER_STEMS = ("cover", "folder", "front")
Stat = tuple[int, int]


@dataclass
class _Folder:
    tracks: dict[str, Stat]  # file name -> (size, mtime_ns)
    images: dict[str, Stat]  # cover-named image files


def walk(root: Path) -> tuple[dict[str, _Folder], list[str]]:
    """rel_dir -> its audio files and cover-named images; plus the files skipped. Never loops."""
    folders: dict[str, _Folder] = {}
    skipped: list[str] = []
    seen: set[tuple[int, int]] = set()
    pending = [(str(root), "")]
    while pending:
        folder, rel_dir = pending.pop()
        try:
            info = os.stat(folder)
            with os.scandir(folder) as listing:
                children = list(listing)
        except OSError:
            skipped.append(rel_dir or ".")
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        here = _Folder({}, {})
        for child in children:
            if is_hidden_or_system(child.name):
                continue
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            stem, ext = os.path.splitext(child.name.lower())
            try:
                if child.is_dir():
                    pending.append((child.path, rel))
                    continue
                if ext in AUDIO_EXTENSIONS or (stem in COVER_STEMS and ext in IMAGE_EXTENSIONS):
                    st = child.stat()
                    (here.tracks if ext in AUDIO_EXTENSIONS else here.images)[child.name] = (
                        st.st_size, st.st_mtime_ns)
                    continue
            except OSError:
                pass
            skipped.append(rel)
        if here.tracks or here.images:
            folders[rel_dir] = here
    return folders, skipped


def _read_cache(cache_file: Path | None, root: Path) -> dict[str, Any]:
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged cache only costs a re-read
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or data.get("root") != str(root):
        return {}
    tracks = data.get("tracks")
    return tracks if isinstance(tracks, dict) else {}


def _write_cache(cache_file: Path | None, root: Path, tracks: dict[str, Any]) -> None:
    if cache_file is None:
        return
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache_file) as tmp:
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "root": str(root), "tracks": tracks}), encoding="utf-8")


def read_tracks(root: Path, folders: dict[str, _Folder], cache_file: Path | None) -> dict[str, dict[str, Any]]:
    """relpath -> facts (or {"error": reason}) of every track; unchanged tracks come from the cache."""
    cached = _read_cache(cache_file, root)
    tracks: dict[str, dict[str, Any]] = {}
    changed = False
    for rel_dir, folder in folders.items():
        for name, (size, mtime_ns) in folder.tracks.items():
            rel = _join(rel_dir, name)
            old = cached.get(rel)
            if old is not None and old.get("size") == size and old.get("mtime_ns") == mtime_ns:
                tracks[rel] = old
                continue
            try:
                facts = track_facts(root / rel)
            except TagProblem as exc:
                facts = {"error": str(exc)}
            tracks[rel] = {**facts, "size": size, "mtime_ns": mtime_ns}
            changed = True
    if changed or len(tracks) != len(cached):
        _write_cache(cache_file, root, tracks)
    return tracks


def _folder_cover(folder: _Folder) -> str | None:
    def rank(name: str) -> tuple[int, int, str]:
        stem, ext = os.path.splitext(name.lower())
        return COVER_STEMS.index(stem), 0 if ext in (".jpg", ".jpeg") else 1, name

    return min(folder.images, key=rank) if folder.images else None


def _embedded(tracks: list[tuple[str, dict[str, Any]]]) -> tuple[str, str] | None:
    """(track relpath, picture source): a front cover first, else the first picture of any type."""
    for wanted in (FRONT_COVER, None):
        for rel, facts in tracks:
            for source, kind in facts.get("pictures", []):
                if wanted is None or kind == wanted:
                    return rel, source
    return None


@dataclass
class _Album:
    folder: str
    title: str
    tracks: list[tuple[str, dict[str, Any]]]


def _albums(folders: dict[str, _Folder], tracks: dict[str, dict[str, Any]]) -> list[_Album]:
    by_key: dict[tuple[str, str], _Album] = {}
    for rel_dir in sorted(folders):
        for name in sorted(folders[rel_dir].tracks):
            rel = _join(rel_dir, name)
            facts = tracks[rel]
            if "error" in facts:
                continue
            album = facts.get("album", "")
            by_key.setdefault((rel_dir, album.casefold()), _Album(rel_dir, album, [])).tracks.append((rel, facts))
    return list(by_key.values())


def _join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{name}" if rel_dir else name


def _creator(album: _Album) -> str:
    album_artists = [f["album_artist"] for _, f in album.tracks if f.get("album_artist")]
    artists = album_artists or [f["artist"] for _, f in album.tracks if f.get("artist")]
    return Counter(artists).most_common(1)[0][0] if artists else ""


def read_music(root: Path, rules: GenreRules, *, cache_file: Path | None = None) -> LibraryListing:
    """List one cover per album of the music collection under `root` (read only)."""
    root = Path(root)
    if not root.is_dir():
        raise LibraryError(f"music folder {root} does not exist or is not a folder")
    root = root.resolve()
    folders, skipped = walk(root)
    tracks = read_tracks(root, folders, cache_file)
    albums = _albums(folders, tracks)
    per_folder = Counter(album.folder for album in albums)
    covers: dict[tuple[str, str], list[_Album]] = defaultdict(list)
    no_cover: list[str] = []
    for album in albums:
        image = _folder_cover(folders[album.folder])
        embedded = _embedded(album.tracks)
        if image and (per_folder[album.folder] == 1 or embedded is None):
            covers[(_join(album.folder, image), FILE)].append(album)
        elif embedded:
            covers[embedded].append(album)
        else:
            no_cover.append(f"{album.folder or '.'} ({album.title or 'no album tag'})")
    entries = [_entry(relpath, source, group, rules, folders) for (relpath, source), group in covers.items()]
    entries += [LibraryEntry(rel, "", facts["size"], facts["mtime_ns"], source="tags", problem=facts["error"])
                for rel, facts in tracks.items() if "error" in facts]
    entries.sort(key=lambda e: (e.relpath, e.source))
    return LibraryListing(root, entries, skipped, kind="music", no_cover=sorted(no_cover))


def _entry(relpath: str, source: str, albums: list[_Album], rules: GenreRules,
           folders: dict[str, _Folder]) -> LibraryEntry:
    tracks = [facts for album in albums for _, facts in album.tracks]
    genre = album_genre([rules.genres(facts.get("genres", [])) for facts in tracks])
    raw = list(dict.fromkeys(value for facts in tracks for value in facts.get("genres", [])))
    rel_dir, _, name = relpath.rpartition("/")
    folder = folders[rel_dir]
    size, mtime_ns = folder.images[name] if source == FILE else folder.tracks[name]
    raw_text = " | ".join(raw)[:200]
    return LibraryEntry(
        relpath, genre, size, mtime_ns, source=source, raw_genre=raw_text if raw_text != genre else "",
        title=" / ".join(dict.fromkeys(a.title for a in albums if a.title)),
        creator=" / ".join(dict.fromkeys(c for c in map(_creator, albums) if c)),
    )
