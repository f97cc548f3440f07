"""A CSV manifest: `path,genre` rows, paths relative to the library root.

An empty genre cell means an unlabelled cover. Every bad row is collected and reported at once
(naming the file and the row), so a person can fix them in one pass.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from coverlens.errors import ManifestError
from coverlens.sources.base import LibraryEntry, LibraryListing
from coverlens.sources.text_files import TextFileProblem, read_text

MANIFEST_REQUIRED = ("path", "genre")
# Columns a manifest may carry besides path and genre (facts a dataset often lists); not trusted.
MANIFEST_OPTIONAL = frozenset({"width", "height", "format", "mode", "md5", "sha256", "size", "bytes"})


def _header_problems(columns: list[str]) -> list[str]:
    problems = []
    missing = [c for c in MANIFEST_REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in MANIFEST_REQUIRED and c not in MANIFEST_OPTIONAL]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)} (needs: path,genre)")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)} (allowed: path, genre, "
                        f"{', '.join(sorted(MANIFEST_OPTIONAL))})")
    return problems


def read_manifest(manifest: Path, root: Path | None = None) -> LibraryListing:
    """Read a `path,genre` CSV. Paths are relative to `root` (default: the manifest's folder)."""
    manifest = Path(manifest)
    base = (root or manifest.parent).resolve()
    try:
        text = read_text(manifest)
    except TextFileProblem as exc:
        raise ManifestError(manifest, [str(exc) if exc.line else f"cannot open: {exc.message}"]) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise ManifestError(manifest, [f"line 1: {exc}"]) from exc
    columns = [c.strip() for c in header]
    problems = _header_problems(columns)
    if problems:
        raise ManifestError(manifest, problems)
    path_at, genre_at = columns.index("path"), columns.index("genre")
    seen: dict[str, int] = {}
    entries: list[LibraryEntry] = []
    while True:
        line = reader.line_num + 1  # where this record starts (a quoted field may span lines)
        try:
            fields = next(reader, None)
        except csv.Error as exc:
            problems.append(f"row {line}: {exc}")
            break  # the csv module cannot resynchronise after a broken quote
        if fields is None:
            break
        if not fields:
            continue  # a blank line
        if len(fields) > len(columns):
            problems.append(f"row {line}: {len(fields)} fields, the header has {len(columns)} "
                            "(quote a value that holds a comma)")
            continue
        rel = fields[path_at].strip() if path_at < len(fields) else ""
        if not rel:
            problems.append(f"row {line}: empty path")
            continue
        if genre_at >= len(fields):
            problems.append(f"row {line}: {rel}: no genre field (write `{rel},` for a cover without a genre)")
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
        entries.append(LibraryEntry(relpath, fields[genre_at].strip()))
    if problems:
        raise ManifestError(manifest, problems)
    if not entries:
        raise ManifestError(manifest, ["no rows"])
    return LibraryListing(base, entries, [], kind="csv")
