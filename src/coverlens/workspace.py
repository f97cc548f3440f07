"""Where coverlens keeps its files: one workspace folder per library.

The library itself is never written to; everything derived from it lives here.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coverlens.errors import WorkspaceError

WORKSPACE_ENV = "COVERLENS_WORKSPACE"
DEFAULT_WORKSPACE = "coverlens-workspace"
FORMAT_VERSION = 1


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place only if the block succeeds.

    A crash at any point leaves either the old file or the new one, never half a file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should read like any written file
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, data: Any) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WorkspaceError(f"{path}: not valid JSON ({exc}); delete it and re-run the command") from exc


@dataclass(frozen=True)
class Workspace:
    """The paths of one workspace. Creating the object touches nothing on disk."""

    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None = None) -> Workspace:
        """`--workspace` wins, then $COVERLENS_WORKSPACE, then ./coverlens-workspace."""
        chosen = explicit or os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE
        return cls(Path(chosen).expanduser().resolve())

    @property
    def meta_file(self) -> Path:
        return self.root / "workspace.json"

    @property
    def catalog_file(self) -> Path:
        return self.root / "catalog.csv"

    @property
    def library_file(self) -> Path:
        return self.root / "library.json"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def ensure(self) -> Workspace:
        """Create the workspace (or check an existing one is of a format this version reads)."""
        if self.meta_file.exists():
            self.check_format()
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.meta_file, {"format": FORMAT_VERSION})
        return self

    def check_format(self) -> None:
        meta = read_json(self.meta_file)
        found = meta.get("format") if isinstance(meta, dict) else None
        if found != FORMAT_VERSION:
            raise WorkspaceError(
                f"workspace {self.root} has format {found!r}, this coverlens reads format {FORMAT_VERSION}; "
                "use a new --workspace folder (the library itself is untouched) and re-run `coverlens catalog`"
            )

    def require_catalog(self) -> Path:
        if not self.catalog_file.exists():
            raise WorkspaceError(
                f"no catalog in workspace {self.root}; run `coverlens catalog LIBRARY` first"
            )
        self.check_format()
        return self.catalog_file
