"""The catalog: one row per cover file of a library, persisted in the workspace.

Columns: id (md5 of the picture's bytes: the cover's identity), path (the file holding the picture,
relative to the library root), genre ("" = unlabelled), width, height, format, mode, frames, bytes
(size of the file at `path`), mtime_ns, dhash (perceptual hash), status ("ok" or "unreadable"),
reason, split ("train"/"test", "unlabelled" for covers without a genre; empty for unreadable
files); then, added with music and Calibre sources (a catalog without them reads as "file" and
empty text): source (where the picture is: "file", or a tag frame such as "APIC:0"; see
`coverlens.sources.read_cover`, the one way to read a cover), raw_genre (the library's genre text
when it differs from `genre`), title and creator (album and artist, or book title and authors).

Re-cataloging reuses every row whose file has the same size and modification time, so an
unchanged library is not read again, and covers keep their split when the library grows.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.catalog_file import COLUMNS, INT_COLUMNS, TEXT_DEFAULTS, load_catalog, read_rows, write_rows
from coverlens.errors import ImageError, WorkspaceError
from coverlens.images import decode_image
from coverlens.sources import FILE, LibraryEntry, LibraryListing, cover_name, detect_source, list_source, read_cover
from coverlens.splits import UNLABELLED, assign_splits
from coverlens.workspace import Workspace, read_json, write_json_atomic

__all__ = ["COLUMNS", "INT_COLUMNS", "TEXT_DEFAULTS", "CatalogSummary", "distinct_covers", "labelled_covers",
           "library_root", "load_catalog", "read_rows", "run_catalog", "write_rows"]

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

OK, UNREADABLE = "ok", "unreadable"


class EmptyLibraryError(WorkspaceError):
    """The library lists no cover at all (an empty folder, or a disk that is not mounted)."""


@dataclass
class CatalogSummary:
    files: int
    distinct: int
    unreadable: int
    read: int
    reused: int
    removed: int
    skipped: int
    genres: int
    empty_genres: list[str] = field(default_factory=list)
    unlabelled: int = 0  # distinct readable covers without a genre
    source: str = "folders"
    no_cover: list[str] = field(default_factory=list)  # albums or books without any picture

    def describe(self) -> str:
        """One sentence for people (the CLI and the app say the same)."""
        text = (f"catalogued {self.files:,} files ({self.distinct:,} distinct, {self.unreadable:,} unreadable) in "
                f"{self.genres} genres: read {self.read:,}, reused {self.reused:,}, removed {self.removed:,}, "
                f"skipped {self.skipped:,} non-cover files")
        if self.source != "folders":
            text += f"; source: {self.source}"
        if self.unlabelled:
            text += f"; {self.unlabelled:,} unlabelled covers (kept out of train and test)"
        if self.no_cover:
            shown = ", ".join(self.no_cover[:5]) + (f" and {len(self.no_cover) - 5} more" if len(self.no_cover) > 5
                                                    else "")
            text += f"; {len(self.no_cover):,} without a picture: {shown}"
        if self.empty_genres:
            text += f"; genre folders without covers, left out: {', '.join(self.empty_genres)}"
        return text


def dhash(image: Image.Image) -> str:
    """64-bit difference hash: near-identical covers (re-encoded, resized) share it."""
    small = image.convert("L").resize((9, 8))
    pixels = small.tobytes()  # one byte per pixel in mode L
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | int(pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return f"{bits:016x}"


def describe_file(root: Path, relpath: str, source: str = FILE, max_pixels: int | None = None) -> dict[str, Any]:
    """Read, hash and decode one cover into the catalog fields it decides."""
    try:
        data = read_cover(root, relpath, source)
    except ImageError as exc:
        return {"id": "", "bytes": 0, "status": UNREADABLE, "reason": exc.reason}
    row: dict[str, Any] = {"id": hashlib.md5(data).hexdigest(), "bytes": len(data)}
    try:
        image, facts = decode_image(data, name=cover_name(root / relpath, source), max_pixels=max_pixels)
    except ImageError as exc:
        return {**row, "status": UNREADABLE, "reason": exc.reason}
    return {
        **row, "width": facts.width, "height": facts.height, "format": facts.format,
        "mode": facts.mode, "frames": facts.frames, "dhash": dhash(image), "status": OK, "reason": "",
    }


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def list_library(library: Path | None, manifest: Path | None, source: str | None = None,
                 genre_map: Path | None = None, cache_dir: Path | None = None) -> LibraryListing:
    """The library's covers through its source (detected when `source` is None)."""
    kind = source or detect_source(library, manifest)
    return list_source(kind, library, manifest=manifest, genre_map=genre_map, cache_dir=cache_dir)


def _entry_fields(entry: LibraryEntry) -> dict[str, Any]:
    return {"path": entry.relpath, "genre": entry.genre, "source": entry.source, "raw_genre": entry.raw_genre,
            "title": entry.title, "creator": entry.creator}


def build_rows(
    listing: LibraryListing,
    previous: dict[str, dict[str, Any]],
    *,
    max_pixels: int | None = None,
    workers: int | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One row per entry; unchanged files reuse their previous row. Returns (rows, files read).

    `previous` is keyed by (path, source). An entry the source could not list (unreadable tags)
    becomes an unreadable row without being read again.
    """
    rows: list[dict[str, Any]] = []
    to_read: list[tuple[int, LibraryEntry, tuple[int, int] | None]] = []
    for entry in listing.entries:
        stat = (entry.size, entry.mtime_ns) if entry.mtime_ns is not None else _stat(listing.root / entry.relpath)
        old = previous.get((entry.relpath, entry.source))
        if entry.problem:
            rows.append({**dict.fromkeys(INT_COLUMNS, 0), **_entry_fields(entry), "id": "", "status": UNREADABLE,
                         "bytes": stat[0] if stat else 0, "mtime_ns": stat[1] if stat else 0, "reason": entry.problem})
        elif old is not None and stat is not None and (old["bytes"], old["mtime_ns"]) == stat:
            rows.append({**old, **_entry_fields(entry)})
        else:
            to_read.append((len(rows), entry, stat))
            rows.append({})

    def work(item: tuple[int, LibraryEntry, tuple[int, int] | None]) -> tuple[int, dict[str, Any]]:
        index, entry, stat = item
        fields = describe_file(listing.root, entry.relpath, entry.source, max_pixels)
        fields.update(_entry_fields(entry), mtime_ns=stat[1] if stat else 0)
        for column in INT_COLUMNS:  # as a re-read of the file gives them, so an unchanged rerun writes nothing
            fields.setdefault(column, 0)
        if entry.source != FILE and stat is not None and fields["id"]:  # the picture was read (if not decoded)
            fields["bytes"] = stat[0]  # the audio file's size: what tells an unchanged file on the next run
        return index, fields

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) + 1)) as pool:
        results: Iterable[tuple[int, dict[str, Any]]] = pool.map(work, to_read, chunksize=64)
        if progress is not None:
            results = progress(results, len(to_read))
        for index, fields in results:
            rows[index] = fields
    return rows, len(to_read)


def primary_genres(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """id -> the genre most of its copies are filed under (ties: alphabetical).

    An unlabelled copy casts no vote: a cover is unlabelled ("") only when no copy has a genre.
    """
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        if row["status"] == OK:
            votes = counts.setdefault(row["id"], Counter())
            if row["genre"]:
                votes[row["genre"]] += 1
    return {i: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] if c else "" for i, c in counts.items()}


def run_catalog(
    workspace: Workspace,
    library: Path | None = None,
    *,
    manifest: Path | None = None,
    seed: int | None = None,
    test_fraction: float | None = None,
    max_pixels: int | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
    source: str | None = None,
    genre_map: Path | None = None,
) -> CatalogSummary:
    """Catalog (or re-catalog) a library into the workspace; the library is only read.

    `source` is "folders", "csv", "music" or "calibre" (None: the one recorded for this library,
    else detected); `genre_map` a mapping file (see coverlens.sources.genres). Both are recorded.
    """
    workspace.ensure()
    config = read_json(workspace.library_file) if workspace.library_file.exists() else {}
    if library is None and manifest is None and config:
        library = Path(config["root"])
        manifest = Path(config["manifest"]) if config.get("manifest") else None
    recorded = bool(config) and library is not None and str(Path(library).resolve()) == config.get("root")
    if recorded and manifest is None and config.get("source") != "csv":
        source = source or config.get("source")
        genre_map = genre_map or (Path(config["genre_map"]) if config.get("genre_map") else None)
    seed = seed if seed is not None else int(config.get("seed", 0))
    test_fraction = test_fraction if test_fraction is not None else float(config.get("test_fraction", 0.2))
    listing = list_library(library, manifest, source, genre_map, workspace.cache_dir)
    if not listing.entries:
        raise EmptyLibraryError(f"no cover images found under {listing.root} ({_expected(listing.kind)})")

    same_library = workspace.catalog_file.exists() and config.get("root") == str(listing.root)
    previous = _previous_rows(workspace) if same_library else {}
    rows, read = build_rows(listing, previous, max_pixels=max_pixels, progress=progress)

    old_splits = {r["id"]: r["split"] for r in previous.values() if r.get("split")}
    splits = assign_splits(primary_genres(rows), old_splits, test_fraction=test_fraction, seed=seed)
    for row in rows:
        row["split"] = splits.get(row["id"], "") if row["status"] == OK else ""

    if rows != list(previous.values()):  # an unchanged library leaves the catalog file alone
        write_rows(workspace.catalog_file, rows)
    write_json_atomic(workspace.library_file, {
        "root": str(listing.root), "manifest": str(Path(manifest).resolve()) if manifest else None,
        "seed": seed, "test_fraction": test_fraction, "source": listing.kind,
        "genre_map": str(Path(genre_map).resolve()) if genre_map else None,
    })
    current = {(e.relpath, e.source) for e in listing.entries}
    ok_ids = {row["id"] for row in rows if row["status"] == OK}
    return CatalogSummary(
        files=len(rows), distinct=len(ok_ids), unreadable=sum(1 for r in rows if r["status"] != OK),
        read=read, reused=len(rows) - read, removed=sum(1 for p in previous if p not in current),
        skipped=len(listing.skipped), genres=len({row["genre"] for row in rows if row["genre"]}),
        empty_genres=listing.empty_genres, unlabelled=sum(1 for s in splits.values() if s == UNLABELLED),
        source=listing.kind, no_cover=listing.no_cover,
    )


def _previous_rows(workspace: Workspace) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows to reuse; a damaged catalog file is rebuilt from the library (it is only a cache of it)."""
    try:
        return {(r["path"], r["source"]): r for r in read_rows(workspace.catalog_file)}
    except WorkspaceError:
        return {}


def _expected(kind: str) -> str:
    return {"folders": "expected LIBRARY/<genre>/<image>", "csv": "the manifest lists none",
            "music": "no album with a cover picture", "calibre": "no book folder holds a cover.jpg"}.get(kind, kind)


def library_root(workspace: Workspace) -> Path:
    if not workspace.library_file.exists():
        raise WorkspaceError(f"no library recorded in {workspace.root}; run `coverlens catalog LIBRARY` first")
    return Path(read_json(workspace.library_file)["root"])


def distinct_covers(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per readable distinct cover: id, path and source (first copy), genre (primary; ""
    when unlabelled), genres, split, size, title, creator.

    This is what is embedded and searched: byte-identical copies count once. Training and
    evaluation take `labelled_covers` of it (unlabelled covers have split "unlabelled").
    Open a cover with `coverlens.sources.read_cover(root, path, source)`.
    """
    ok = frame[frame["status"] == OK]
    primary = primary_genres(ok.to_dict("records"))
    grouped = ok.groupby("id", sort=True).agg(
        path=("path", "first"), source=("source", "first"), split=("split", "first"), width=("width", "first"),
        height=("height", "first"), genres=("genre", lambda g: "|".join(sorted(set(g) - {""}))),
        title=("title", "first"), creator=("creator", "first"),
    ).reset_index()
    grouped["genre"] = grouped["id"].map(primary)
    return grouped[["id", "path", "source", "genre", "genres", "split", "width", "height", "title", "creator"]]


def labelled_covers(covers: pd.DataFrame) -> pd.DataFrame:
    """The covers that have a genre: the only ones a model may learn from or be scored on."""
    return covers[covers["genre"] != ""]
