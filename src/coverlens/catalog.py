"""The catalog: one row per cover file of a library, persisted in the workspace.

Columns: id (md5 of the bytes: the cover's identity), path (relative to the library root), genre,
width, height, format, mode, frames, bytes, mtime_ns, dhash (perceptual hash), status ("ok" or
"unreadable"), reason, split ("train"/"test"; empty for unreadable files).

Re-cataloging reuses every row whose file has the same size and modification time, so an
unchanged library is not read again, and covers keep their split when the library grows.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import ImageError, WorkspaceError
from coverlens.images import decode_image, read_image_bytes
from coverlens.library import LibraryEntry, LibraryListing, read_manifest, scan_folder
from coverlens.splits import assign_splits
from coverlens.workspace import Workspace, atomic_path, read_json, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

COLUMNS = [
    "id", "path", "genre", "width", "height", "format", "mode", "frames",
    "bytes", "mtime_ns", "dhash", "status", "reason", "split",
]
OK, UNREADABLE = "ok", "unreadable"


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

    def describe(self) -> str:
        """One sentence for people (the CLI and the app say the same)."""
        text = (f"catalogued {self.files:,} files ({self.distinct:,} distinct, {self.unreadable:,} unreadable) in "
                f"{self.genres} genres: read {self.read:,}, reused {self.reused:,}, removed {self.removed:,}, "
                f"skipped {self.skipped:,} non-cover files")
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


def describe_file(path: Path, max_pixels: int | None = None) -> dict[str, Any]:
    """Read, hash and decode one file into the catalog fields it decides."""
    try:
        data = read_image_bytes(path)
    except ImageError as exc:
        return {"id": "", "bytes": 0, "status": UNREADABLE, "reason": exc.reason}
    row: dict[str, Any] = {"id": hashlib.md5(data).hexdigest(), "bytes": len(data)}
    try:
        image, facts = decode_image(data, name=path, max_pixels=max_pixels)
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


def list_library(library: Path | None, manifest: Path | None) -> LibraryListing:
    if manifest is not None:
        return read_manifest(manifest, library)
    if library is None:
        raise WorkspaceError("give a library folder or --manifest FILE.csv")
    return scan_folder(library)


def build_rows(
    listing: LibraryListing,
    previous: dict[str, dict[str, Any]],
    *,
    max_pixels: int | None = None,
    workers: int | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One row per entry; unchanged files reuse their previous row. Returns (rows, files read)."""
    rows: list[dict[str, Any]] = []
    to_read: list[tuple[int, LibraryEntry, tuple[int, int] | None]] = []
    for entry in listing.entries:
        stat = (entry.size, entry.mtime_ns) if entry.mtime_ns is not None else _stat(listing.root / entry.relpath)
        old = previous.get(entry.relpath)
        if old is not None and stat is not None and (old["bytes"], old["mtime_ns"]) == stat:
            rows.append({**old, "genre": entry.genre})
        else:
            to_read.append((len(rows), entry, stat))
            rows.append({})

    def work(item: tuple[int, LibraryEntry, tuple[int, int] | None]) -> tuple[int, dict[str, Any]]:
        index, entry, stat = item
        fields = describe_file(listing.root / entry.relpath, max_pixels)
        fields.update(path=entry.relpath, genre=entry.genre, mtime_ns=stat[1] if stat else 0)
        return index, fields

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) + 1)) as pool:
        results: Iterable[tuple[int, dict[str, Any]]] = pool.map(work, to_read, chunksize=64)
        if progress is not None:
            results = progress(results, len(to_read))
        for index, fields in results:
            rows[index] = fields
    return rows, len(to_read)


def primary_genres(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """id -> the genre most of its copies are filed under (ties: alphabetical)."""
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        if row["status"] == OK:
            counts.setdefault(row["id"], Counter())[row["genre"]] += 1
    return {i: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for i, c in counts.items()}


def run_catalog(
    workspace: Workspace,
    library: Path | None = None,
    *,
    manifest: Path | None = None,
    seed: int | None = None,
    test_fraction: float | None = None,
    max_pixels: int | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> CatalogSummary:
    """Catalog (or re-catalog) a library into the workspace; the library is only read."""
    workspace.ensure()
    config = read_json(workspace.library_file) if workspace.library_file.exists() else {}
    if library is None and manifest is None and config:
        library = Path(config["root"])
        manifest = Path(config["manifest"]) if config.get("manifest") else None
    seed = seed if seed is not None else int(config.get("seed", 0))
    test_fraction = test_fraction if test_fraction is not None else float(config.get("test_fraction", 0.2))
    listing = list_library(library, manifest)
    if not listing.entries:
        raise WorkspaceError(f"no cover images found under {listing.root} (expected LIBRARY/<genre>/<image>)")

    same_library = workspace.catalog_file.exists() and config.get("root") == str(listing.root)
    previous = {r["path"]: r for r in read_rows(workspace.catalog_file)} if same_library else {}
    rows, read = build_rows(listing, previous, max_pixels=max_pixels, progress=progress)

    old_splits = {r["id"]: r["split"] for r in previous.values() if r.get("split")}
    splits = assign_splits(primary_genres(rows), old_splits, test_fraction=test_fraction, seed=seed)
    for row in rows:
        row["split"] = splits.get(row["id"], "") if row["status"] == OK else ""

    if rows != list(previous.values()):  # an unchanged library leaves the catalog file alone
        write_rows(workspace.catalog_file, rows)
    write_json_atomic(workspace.library_file, {
        "root": str(listing.root), "manifest": str(Path(manifest).resolve()) if manifest else None,
        "seed": seed, "test_fraction": test_fraction,
    })
    current = {e.relpath for e in listing.entries}
    ok_ids = {row["id"] for row in rows if row["status"] == OK}
    return CatalogSummary(
        files=len(rows), distinct=len(ok_ids), unreadable=sum(1 for r in rows if r["status"] != OK),
        read=read, reused=len(rows) - read, removed=sum(1 for p in previous if p not in current),
        skipped=len(listing.skipped), genres=len({row["genre"] for row in rows}), empty_genres=listing.empty_genres,
    )


INT_COLUMNS = ("width", "height", "frames", "bytes", "mtime_ns")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Catalog rows as plain dicts (the fast path for re-cataloging; no pandas)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in INT_COLUMNS:
            row[column] = int(row[column] or 0)
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in COLUMNS} for row in rows)


def load_catalog(workspace: Workspace) -> pd.DataFrame:
    import pandas as pd

    path = workspace.require_catalog()
    dtypes = {c: str for c in ("id", "path", "genre", "format", "mode", "dhash", "status", "reason", "split")}
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False)
    for column in ("width", "height", "frames", "bytes", "mtime_ns"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    return frame


def library_root(workspace: Workspace) -> Path:
    if not workspace.library_file.exists():
        raise WorkspaceError(f"no library recorded in {workspace.root}; run `coverlens catalog LIBRARY` first")
    return Path(read_json(workspace.library_file)["root"])


def distinct_covers(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per readable distinct cover: id, path (first copy), genre (primary), genres, split, size.

    This is what is trained on, embedded and searched: byte-identical copies count once.
    """
    ok = frame[frame["status"] == OK]
    primary = primary_genres(ok.to_dict("records"))
    grouped = ok.groupby("id", sort=True).agg(
        path=("path", "first"), split=("split", "first"), width=("width", "first"),
        height=("height", "first"), genres=("genre", lambda g: "|".join(sorted(set(g)))),
    ).reset_index()
    grouped["genre"] = grouped["id"].map(primary)
    return grouped[["id", "path", "genre", "genres", "split", "width", "height"]]
