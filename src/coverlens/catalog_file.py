"""The catalog file (catalog.csv): its columns, and reading and writing its rows.

See coverlens.catalog for what each column means.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import WorkspaceError
from coverlens.sources import FILE
from coverlens.workspace import Workspace, atomic_path

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "id", "path", "genre", "width", "height", "format", "mode", "frames",
    "bytes", "mtime_ns", "dhash", "status", "reason", "split", "source", "raw_genre", "title", "creator",
]
TEXT_DEFAULTS = {"source": FILE, "raw_genre": "", "title": "", "creator": ""}  # absent from older catalogs
INT_COLUMNS = ("width", "height", "frames", "bytes", "mtime_ns")  # also what load_catalog parses as numbers
REQUIRED = ("id", "path", "genre", "status", "split", *INT_COLUMNS)  # a catalog without them is damaged


def damaged(path: Path, problem: str) -> WorkspaceError:
    """A catalog file that cannot be read back: named, with the command that rebuilds it."""
    return WorkspaceError(f"{path}: damaged catalog ({problem}); rebuild it with `coverlens catalog LIBRARY` "
                          "(every cover is read again; the store is kept)")


def _check_columns(path: Path, columns: Any) -> None:
    present = set(columns) if columns is not None else set()
    missing = [c for c in REQUIRED if c not in present]
    if missing:
        raise damaged(path, f"missing columns: {', '.join(missing)}")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Catalog rows as plain dicts (the fast path for re-cataloging; no pandas)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            _check_columns(path, reader.fieldnames)
        for row in rows:
            for column in INT_COLUMNS:
                row[column] = int(row[column] or 0)
    except (UnicodeDecodeError, csv.Error, ValueError, TypeError) as exc:
        raise damaged(path, str(exc)) from exc
    for row in rows:
        for column, default in TEXT_DEFAULTS.items():
            row[column] = row.get(column) or default
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in COLUMNS} for row in rows)


def load_catalog(workspace: Workspace) -> pd.DataFrame:
    import pandas as pd

    path = workspace.require_catalog()
    dtypes = {c: str for c in COLUMNS if c not in INT_COLUMNS}
    try:
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise damaged(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    _check_columns(path, frame.columns)
    for column in INT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    for column, default in TEXT_DEFAULTS.items():
        if column not in frame.columns:
            frame[column] = default
    frame.loc[frame["source"] == "", "source"] = FILE
    return frame
