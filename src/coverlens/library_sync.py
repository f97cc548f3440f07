"""`index` follows the library: the catalog is brought up to date (the same incremental scan as
`catalog`) before anything is embedded, so deletions, renames and new covers reach the store in one
command.

A library that vanished is never read as "every cover was deleted": a missing root, a missing
manifest, or a root that now lists nothing while the catalog holds covers (an unmounted disk is
an empty folder) is refused with the command that re-points the workspace, and the store is left
as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import LibraryError, from_os_error
from coverlens.workspace import read_json

if TYPE_CHECKING:
    from coverlens.catalog import CatalogSummary
    from coverlens.service_api import CoverlensAPI, ProgressCallback
    from coverlens.workspace import Workspace


def _repoint(workspace: Workspace) -> str:
    return (f"the store is kept as it is. Mount it, or if the library moved, re-point the workspace: "
            f"`coverlens catalog NEWROOT -w {workspace.root}`, then re-run `coverlens index`")


def _lists_nothing(root: Path) -> bool:
    try:
        with os.scandir(root) as entries:
            return not any(not e.name.startswith(".") for e in entries)
    except OSError as exc:
        raise from_os_error(exc, root, "listing the library") from exc


def check_library_present(workspace: Workspace) -> dict[str, Any]:
    """The recorded library (library.json), refused when it is gone or not mounted."""
    config = read_json(workspace.library_file)
    root = Path(config["root"])
    manifest = config.get("manifest")
    if manifest and not Path(manifest).is_file():
        raise LibraryError(f"the library's manifest {manifest} is missing; {_repoint(workspace)}")
    if not manifest and not root.is_dir():
        raise LibraryError(f"the library {root} is missing or not mounted; {_repoint(workspace)}")
    if not manifest and _lists_nothing(root) and _catalog_has_covers(workspace):
        raise LibraryError(f"the library {root} is empty now (a disk not mounted?) while the catalog holds "
                           f"covers; {_repoint(workspace)}")
    return config


def _catalog_has_covers(workspace: Workspace) -> bool:
    from coverlens.catalog import read_rows

    return any(row["status"] == "ok" for row in read_rows(workspace.catalog_file))


def follow_library(service: CoverlensAPI, progress: ProgressCallback | None = None) -> CatalogSummary:
    """Re-catalog the recorded library (its root, manifest, source and options from library.json)."""
    from coverlens.catalog import EmptyLibraryError

    workspace = service.workspace
    check_library_present(workspace)
    try:
        return service.catalog(None, progress)
    except EmptyLibraryError as exc:  # the folder holds files, but no cover any more
        raise LibraryError(f"{exc}; {_repoint(workspace)}") from exc
