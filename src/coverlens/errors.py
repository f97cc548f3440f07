"""Typed errors. Library code raises these; the CLI maps them to exit codes, the UI to messages."""

from __future__ import annotations

from pathlib import Path


class CoverlensError(Exception):
    """Base class of every error coverlens reports to a person."""

    exit_code = 1


class ImageError(CoverlensError):
    """A file that cannot be used as a cover image."""

    exit_code = 3

    def __init__(self, path: Path | str | None, reason: str) -> None:
        self.path = str(path) if path is not None else "<upload>"
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ManifestError(CoverlensError):
    """A CSV manifest with bad rows or columns; `problems` lists each one."""

    exit_code = 4

    def __init__(self, manifest: Path | str, problems: list[str]) -> None:
        self.manifest = str(manifest)
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"manifest {self.manifest} has {len(problems)} problem(s):\n  {shown}{more}")


class ArgumentError(CoverlensError):
    """A value out of range given to a library function: used as given or refused, never replaced.
    (The CLI refuses the same values earlier, where argparse parses them.)"""

    exit_code = 2


class LibraryError(CoverlensError):
    """A library folder that cannot be catalogued as given."""

    exit_code = 4


class WorkspaceError(CoverlensError):
    """The workspace is missing something a command needs, or is in an unknown format."""

    exit_code = 5


class ModelError(CoverlensError):
    """A missing, changed or incompatible model file."""

    exit_code = 6


class WeightsError(CoverlensError):
    """Pretrained weights that cannot be found or verified."""

    exit_code = 7


class StoreError(CoverlensError):
    """A problem with the vector store (locked, filled by another model, unreachable)."""

    exit_code = 8


class BusyError(CoverlensError):
    """Another process is writing the same workspace (or store): "busy: <command>, pid N, since T"."""

    exit_code = 9


class FileSystemError(CoverlensError):
    """An OS error on a workspace or library path, named with what to do (see `from_os_error`)."""

    exit_code = 14

    def __init__(self, message: str, path: str | None = None, errno_code: int | None = None) -> None:
        self.path = path
        self.errno = errno_code
        super().__init__(message)


class NoSpaceError(FileSystemError):
    """ENOSPC, EDQUOT, EFBIG: the disk (or quota, or file size limit) is full."""

    exit_code = 10


class ReadOnlyError(FileSystemError):
    """EROFS: the workspace is on a read-only file system."""

    exit_code = 11


class AccessError(FileSystemError):
    """EACCES, EPERM: the user may not read or write the path."""

    exit_code = 12


class BadPathError(FileSystemError):
    """ENAMETOOLONG, ENOTDIR, ELOOP, EISDIR, or a workspace path that is a file."""

    exit_code = 13


# Exit codes of the `coverlens` command, one row each: (code, what it means). The README quotes this
# table; tests check every error class above has its row. Codes are stable: scripts may test them.
EXIT_CODES: tuple[tuple[int, str, str], ...] = (
    (0, "ok", "the command did what was asked"),
    (1, "CoverlensError", "refused for another reason named in the message"),
    (2, "usage / ArgumentError", "bad command line: an unknown option, or a value out of range (argparse)"),
    (3, "ImageError", "a cover image that cannot be used (not a regular file, too large, corrupt, ...)"),
    (4, "LibraryError / ManifestError", "a library folder or CSV manifest that cannot be catalogued"),
    (5, "WorkspaceError", "the workspace lacks what the command needs, or is of another format"),
    (6, "ModelError", "a missing, changed or incompatible model file"),
    (7, "WeightsError", "pretrained weights that cannot be found or verified"),
    (8, "StoreError", "the vector store: not indexed yet, filled by another model, unreachable"),
    (9, "BusyError", "another coverlens command is writing this workspace (busy: command, pid, since)"),
    (10, "NoSpaceError", "no space left on the disk (or quota, or file size limit): free space, re-run"),
    (11, "ReadOnlyError", "the workspace is on a read-only file system"),
    (12, "AccessError", "permission denied on a workspace or library path"),
    (13, "BadPathError", "a path that cannot be used: name too long, not a folder, a symlink loop"),
    (14, "FileSystemError", "another operating-system error on a named path (I/O error, ...)"),
    (70, "internal error", "a bug in coverlens: re-run with --debug and report the traceback"),
    (130, "interrupted", "stopped with Ctrl-C: re-run the same command to resume"),
)
INTERNAL_ERROR_EXIT = 70
INTERRUPTED_EXIT = 130


def shorten_path(path: str, limit: int = 160) -> str:
    """A path fit for a one-line message (a 4,000-character name would drown it)."""
    return path if len(path) <= limit else f"{path[:limit // 2]}...{path[-limit // 2:]} ({len(path):,} characters)"


def from_os_error(exc: OSError, path: Path | str | None = None, doing: str | None = None) -> FileSystemError:
    """The typed error, naming the path and what to do, for an OSError met on `path`."""
    import errno as E

    where = shorten_path(str(path if path is not None else (exc.filename or "?")))
    action = f" while {doing}" if doing else ""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code in (E.ENOSPC, E.EDQUOT, E.EFBIG):
        return NoSpaceError(f"{where}: {reason}{action}; free some space (or use a --workspace on a larger disk) "
                            "and re-run the same command: what was stored before is kept", where, code)
    if code == E.EROFS:
        return ReadOnlyError(f"{where}: read-only file system{action}; this command writes to the workspace: "
                             "make it writable or copy it to a writable --workspace", where, code)
    if code in (E.EACCES, E.EPERM):
        return AccessError(f"{where}: permission denied{action}; check the owner and mode of this path "
                           "(`ls -ld`), or use a --workspace you may write", where, code)
    if code == E.ENAMETOOLONG:
        return BadPathError(f"{where}: file name too long{action}; choose a shorter path", where, code)
    if code == E.ENOTDIR:
        return BadPathError(f"{where}: a part of this path is a file, not a folder{action}; choose another path",
                            where, code)
    if code == E.EISDIR:
        return BadPathError(f"{where}: is a folder, not a file{action}", where, code)
    if code == E.ELOOP:
        return BadPathError(f"{where}: too many levels of symbolic links (a symlink loop){action}", where, code)
    if code == E.ENOENT:
        return FileSystemError(f"{where}: no such file or folder{action}; check the path", where, code)
    return FileSystemError(f"{where}: {reason}{action} (errno {code})", where, code)
