"""Thumbnails of the library's covers: made once per cover, kept in the workspace, served by the app.

A gallery of full-size covers ships megabytes per search (640 px JPEGs are ~100 kB each) and makes
the server hash and copy each file into its cache. A 256 px WebP is a few kB. Thumbnails are keyed
by the cover's content id (`<workspace>/thumbs/<id>.webp`): a cover whose file changes gets a new
id, so a thumbnail never goes stale and needs no invalidation. They are made lazily (the first
search that shows a cover) or ahead of time (after an index run, `make_thumbnails`), written
atomically (temp file + rename), so two searches making the same one at once are harmless.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from coverlens.errors import CoverlensError

SIZE = 256  # the longest side, in pixels: sharp in a 5-column gallery, a few kB per cover
QUALITY = 80
FOLDER = "thumbs"
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class Thumbnails:
    """The thumbnail folder of one workspace (or any folder: a benchmark on a read-only workspace)."""

    def __init__(self, folder: Path, size: int = SIZE) -> None:
        self.folder = Path(folder)
        self.size = size
        self.made = 0  # thumbnails this instance wrote (what a warm search must not do again)

    def path(self, cover_id: str) -> Path | None:
        """Where the cover's thumbnail lives; None for an id that cannot name a file."""
        return self.folder / f"{cover_id}.webp" if _ID.fullmatch(cover_id or "") else None

    def get(self, cover_id: str, source: Callable[[], Any]) -> Path | None:
        """The thumbnail of `cover_id`, made from what `source()` gives when missing: a file's path,
        the bytes of a picture, or a decoded PIL image (a picture embedded in an audio file).

        None when it cannot be made (unreadable cover, read-only workspace): the caller shows the
        full cover instead. Never raises for a bad cover: a gallery is not the place to fail.
        """
        target = self.path(cover_id)
        if target is None:
            return None
        if target.is_file():
            return target
        try:
            self._make(source(), target)
        except (OSError, CoverlensError, ValueError):
            return None
        return target

    def _make(self, original: Any, target: Path) -> None:
        from PIL import Image

        from coverlens.images import MAX_UPLOAD_BYTES, decode_image, read_image_bytes

        if isinstance(original, Image.Image):
            image = original.copy()
        elif isinstance(original, bytes):
            image, _ = decode_image(original)
        else:
            image, _ = decode_image(read_image_bytes(original, max_bytes=MAX_UPLOAD_BYTES), name=original)
        image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{target.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                image.convert("RGB").save(handle, format="WEBP", quality=QUALITY, method=4)
            os.replace(tmp, target)
            self.made += 1
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def make_all(self, covers: Iterable[tuple[str, Path]], progress: Callable[[float, str], None] | None = None,
                 total: int | None = None) -> int:
        """Make the missing thumbnails of `(id, file)` pairs; returns how many were written."""
        before = self.made
        items = list(covers)
        total = total or len(items)
        for done, (cover_id, original) in enumerate(items, start=1):
            self.get(cover_id, lambda original=original: original)
            if progress is not None and (done % 25 == 0 or done == total):
                progress(done / max(total, 1), f"thumbnails: {done:,}/{total:,}")
        return self.made - before


def workspace_thumbnails(workspace_root: Path) -> Thumbnails:
    return Thumbnails(Path(workspace_root) / FOLDER)


def make_library_thumbnails(service: Any, thumbs: Thumbnails,
                            progress: Callable[[float, str], None] | None = None) -> int:
    """Make the missing thumbnails of every catalogued cover (after an index run, so that no search
    has to); returns how many were written."""
    from coverlens.catalog import distinct_covers, load_catalog

    if service.library_root() is None or not service.workspace.catalog_file.exists():
        return 0
    covers = distinct_covers(load_catalog(service.workspace))
    return thumbs.make_all([(cover_id, service.cover_path(path))
                            for cover_id, path in zip(covers["id"], covers["path"], strict=True)], progress=progress)
