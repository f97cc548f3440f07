"""The catalog file (catalog.csv): its columns, and reading and writing its rows.

See coverlens.catalog for what each column means.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Catalog rows as plain dicts (the fast path for re-cataloging; no pandas)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in INT_COLUMNS:
            row[column] = int(row[column] or 0)
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
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False)
    for column in INT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    for column, default in TEXT_DEFAULTS.items():
        if column not in frame.columns:
            frame[column] = default
    frame.loc[frame["source"] == "", "source"] = FILE
    return frame
