"""The writer lock of an embedded store directory: one writing process at a time (see `coverlens.locks`)."""

from __future__ import annotations

from pathlib import Path

from coverlens.locks import WriterLock

LOCK_NAME = "coverlens-writer.lock"


def store_lock(directory: Path) -> WriterLock:
    """The lock of `<store dir>/coverlens-writer.lock`; a second writer gets "store D is busy: ..."."""
    return WriterLock(directory / LOCK_NAME, f"store {directory}",
                      hint="wait for it to finish, or use a Chroma server (--chroma-url) for several writers",
                      reentrant=False)
