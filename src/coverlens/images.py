"""The one safe way to open a cover image.

Every stage of coverlens opens images through `open_image`, so every stage gets the same guard
against decompression bombs, the same EXIF orientation, the same conversion to RGB and the same
clear error (`ImageError`, naming the file and the reason) for files that are not usable images.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coverlens.errors import CoverlensError, ImageError

if TYPE_CHECKING:
    from PIL import Image

MAX_PIXELS_ENV = "COVERLENS_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000  # ~7000x7000: far above any cover, far below a bomb
MAX_BYTES_ENV = "COVERLENS_MAX_BYTES"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # covers are KB to a few MB; this bounds memory, not quality
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


def max_pixels_default() -> int:
    return _positive_env(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def max_bytes_default() -> int:
    """The byte limit of one cover file: $COVERLENS_MAX_BYTES, else 64 MiB."""
    return _positive_env(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)


def _positive_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise CoverlensError(f"${name}={raw!r} is not a positive whole number; unset it or set e.g. {default}")
    return value


@dataclass(frozen=True)
class ImageFacts:
    """What the file was before conversion: used by the catalog."""

    width: int
    height: int
    format: str
    mode: str
    frames: int


def read_image_bytes(path: Path | str, *, max_bytes: int | None = None) -> bytes:
    """Read a cover file's bytes, or raise an `ImageError` that names it.

    Only regular files are read: a device (/dev/zero), a FIFO or a socket is refused before a byte
    is read, and so is a file above the byte limit (`max_bytes`, else $COVERLENS_MAX_BYTES, else
    64 MiB), checked with fstat on the open file, and again while reading (the file may grow).
    """
    path = Path(path)
    limit = max_bytes if max_bytes is not None else max_bytes_default()
    hint = f"; raise it with ${MAX_BYTES_ENV}" if max_bytes is None else ""
    try:
        _refuse_special(path, os.stat(path).st_mode)
        # O_NONBLOCK: a FIFO swapped in after the stat must not block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb", closefd=True) as handle:
            info = os.fstat(handle.fileno())
            _refuse_special(path, info.st_mode)
            if info.st_size > limit:
                raise ImageError(path, _too_large(info.st_size, limit) + hint)
            data = handle.read(limit + 1)
    except PermissionError as exc:
        raise ImageError(path, "permission denied") from exc
    except IsADirectoryError as exc:
        raise ImageError(path, "is a directory, not an image file") from exc
    except FileNotFoundError as exc:
        raise ImageError(path, "file not found") from exc
    except OSError as exc:
        raise ImageError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if len(data) > limit:
        raise ImageError(path, _too_large(len(data), limit) + hint)
    return data


def _refuse_special(path: Path, mode: int) -> None:
    kind = _file_kind(mode)
    if kind == "a directory":
        raise ImageError(path, "is a directory, not an image file")
    if kind is not None:
        raise ImageError(path, f"is {kind}, not a regular file; only image files are read")


def _file_kind(mode: int) -> str | None:
    """None for a regular file, else what the path is, in words."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _too_large(size: int, limit: int) -> str:
    shown = f" ({limit / 2**20:g} MiB)" if limit >= 2**20 else ""
    return f"file is larger than the limit: {size:,} bytes, above the limit of {limit:,} bytes{shown}"


def decode_image(
    data: bytes, *, name: Path | str | None = None, max_pixels: int | None = None
) -> tuple[Image.Image, ImageFacts]:
    """Decode bytes into an RGB image (first frame, EXIF-oriented) and the facts of the original."""
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels or max_pixels_default()
    if not data:
        raise ImageError(name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageError(name, "not an image (format not recognised)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(name, f"image is too large (decompression bomb guard): {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(name, f"corrupt image header ({exc})") from exc

    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(name, f"image has no pixels ({width}x{height})")
    if width * height > limit:
        raise ImageError(
            name,
            f"image is {width}x{height} = {width * height:,} pixels, above the limit of {limit:,} "
            f"(decompression bomb guard; raise it with ${MAX_PIXELS_ENV})",
        )
    facts = ImageFacts(width, height, image.format or "unknown", image.mode, getattr(image, "n_frames", 1))
    try:
        image.seek(0)  # animated images: the first frame is the cover
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(name, f"corrupt or truncated image data ({exc})") from exc
    return to_rgb(_orient(image)), facts


def _orient(image: Image.Image) -> Image.Image:
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # a broken EXIF block must not make a good picture unusable
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited on white, 16-bit is scaled down."""
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        scaled = np.clip(array * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(
    source: Path | str | bytes, *, max_pixels: int | None = None, max_bytes: int | None = None
) -> Image.Image:
    """Open a cover from a path or bytes as an RGB image, or raise `ImageError`."""
    if isinstance(source, bytes):
        return decode_image(source, max_pixels=max_pixels)[0]
    data = read_image_bytes(source, max_bytes=max_bytes)
    return decode_image(data, name=source, max_pixels=max_pixels)[0]
