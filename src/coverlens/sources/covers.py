"""The one way to read a cover's bytes: `read_cover(root, path, source)`.

Why covers are read in place rather than extracted into the workspace: the catalog's `path`
stays the library file (relative to the root) and `source` says where the picture is inside it
("file" for an image file, "APIC:0", "flac-picture:0", "covr:0", "ogg-picture:0" for embedded
pictures). So the library stays the single truth (a re-tagged track is noticed by its mtime like
any edited image), nothing is copied (a collection of 50k tracks would otherwise duplicate its
art in the workspace), and every stage that already keys covers by (root, path) only has to
pass `source` along. Reading an embedded picture parses the tag block only (a few ms), which is
small beside decoding and embedding the picture.

The bytes' md5 is the cover's id, whatever holds them: the same art embedded in an MP3 and
saved as cover.jpg is one cover.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from coverlens.errors import ImageError
from coverlens.images import decode_image, read_image_bytes
from coverlens.sources.base import FILE

if TYPE_CHECKING:
    from PIL import Image


def cover_name(path: str | Path, source: str = FILE) -> str:
    """How people see a cover's location: the file, plus the picture inside it when embedded."""
    return str(path) if source in ("", FILE) else f"{path} [{source}]"


def library_file(root: Path, relpath: str) -> Path:
    """root/relpath, refusing a path that climbs out of the library."""
    rel = PurePosixPath(relpath)
    if rel.is_absolute() or ".." in rel.parts:
        raise ImageError(relpath, "path is outside the library")
    return Path(root) / rel


def read_cover(root: Path, relpath: str, source: str = FILE, *, max_bytes: int | None = None) -> bytes:
    """The bytes of the cover at `relpath` (relative to the library `root`) and `source`.

    Raises ImageError naming the file (and the picture) for anything unreadable.
    """
    path = library_file(root, relpath)
    if source in ("", FILE):
        return read_image_bytes(path, max_bytes=max_bytes)
    from coverlens.sources.tags import TagProblem, picture_bytes

    try:
        data = picture_bytes(path, source)
    except TagProblem as exc:
        raise ImageError(cover_name(path, source), str(exc)) from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageError(cover_name(path, source), f"picture is larger than the {max_bytes // 2**20} MiB limit")
    return data


def open_cover(root: Path, relpath: str, source: str = FILE, *, max_pixels: int | None = None,
               max_bytes: int | None = None) -> Image.Image:
    """The cover as an RGB image (through images.decode_image, the one decoder), or ImageError."""
    data = read_cover(root, relpath, source, max_bytes=max_bytes)
    return decode_image(data, name=cover_name(library_file(root, relpath), source), max_pixels=max_pixels)[0]
