"""Where coverlens keeps its files: one workspace folder per library.

The library itself is never written to; everything derived from it lives here.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coverlens.errors import BadPathError, WorkspaceError, shorten_path

WORKSPACE_ENV = "COVERLENS_WORKSPACE"
DEFAULT_WORKSPACE = "coverlens-workspace"
FORMAT_VERSION = 1


TEMP_SUFFIX = ".tmp"
_OLD_TEMP_SECONDS = 3600  # temp files without a pid (older versions): litter once this old


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place only if the block succeeds.

    A crash at any point leaves either the old file or the new one, never half a file. The temp
    file is `.<name>.<pid>-<random>.tmp`: one left by a killed process (kill -9 skips the clean-up
    below) is removed by the next write of the same target, and never one of a live process.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent, target.name)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}-",
                                    suffix=TEMP_SUFFIX)
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


def remove_stale_temps(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temp files `atomic_path` left in `folder` (for the target `name`, or all) when the
    process that made them is gone; returns what was removed."""
    removed = []
    try:
        candidates = list(folder.glob(f".{name}.*{TEMP_SUFFIX}" if name else f".*{TEMP_SUFFIX}"))
    except OSError:
        return removed
    for path in candidates:
        if _temp_owner_alive(path):
            continue
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError:  # a read-only folder: the write that follows names the problem
            break
    return removed


def _temp_owner_alive(path: Path) -> bool:
    stem = path.name[: -len(TEMP_SUFFIX)]
    pid_part = stem.rsplit(".", 1)[-1].split("-", 1)[0]
    if not pid_part.isdigit():  # no pid in the name: judge by age
        try:
            return time.time() - path.stat().st_mtime < _OLD_TEMP_SECONDS
        except OSError:
            return True
    pid = int(pid_part)
    if pid == os.getpid():
        return True  # this process may be writing it right now (another thread)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, data: Any) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _limits(path: Path) -> tuple[int, int]:
    """NAME_MAX and PATH_MAX of the nearest existing folder's file system (255 and 4096 if unknown)."""
    for folder in path.parents:
        try:
            return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
        except (OSError, ValueError):
            continue
    return 255, 4096


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
        workspace = cls(Path(os.path.abspath(Path(chosen).expanduser())))
        workspace.check_path()
        return cls(workspace.root.resolve())

    def check_path(self) -> None:
        """Refuse a workspace path that cannot be one: too long, or a file (or under a file)."""
        text = str(self.root)
        name_max, path_max = _limits(self.root)
        if len(os.fsencode(text)) >= path_max or any(len(os.fsencode(p)) > name_max for p in self.root.parts):
            raise BadPathError(f"workspace path {shorten_path(text)} is too long (at most {name_max} bytes a "
                               f"name, {path_max} in all); choose a shorter --workspace", text)
        for folder in (self.root, *self.root.parents):
            if folder.exists() or folder.is_symlink():
                if not folder.is_dir():
                    what = "is a file" if folder == self.root else f"is under {folder}, which is a file"
                    raise BadPathError(f"workspace path {shorten_path(text)} {what}, not a folder; "
                                       "choose another --workspace", text)
                break

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
        self.check_path()
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
