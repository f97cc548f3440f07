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
