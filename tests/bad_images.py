"""A corpus of bad and unusual image files, made in code: each kind is one case.

`CORPUS` is the one definition of the bad-input kinds the entry points are tested against
(tests/test_bad_input.py): files coverlens must refuse with a reason naming the file, and odd but
valid files it must handle as normal covers. `write_bad_files` writes the refused kinds that are
plain bytes on disk (everything but the permission-denied file), for the image and catalog tests.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import pytest


def jpeg_bytes(size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims 1.6 gigapixels: what a decompression bomb looks like to a reader."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@functools.cache
def _noisy() -> Image.Image:
    """Noise compresses badly, so half of its file cuts into the pixel data, not the header."""
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))


def _first_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _noisy_jpeg() -> bytes:
    buffer = io.BytesIO()
    _noisy().save(buffer, "JPEG")
    return buffer.getvalue()


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (20, 14), (0, 255, 255, 0)).save(buffer, "JPEG")
    return buffer.getvalue()


def _palette_with_transparency() -> bytes:
    image = Image.new("P", (12, 10), 0)
    image.putpalette([10, 20, 30, 200, 40, 40] + [0, 0, 0] * 254)
    image.paste(1, (3, 3, 9, 7))
    image.info["transparency"] = 0
    return png_bytes(image)


def _sixteen_bit() -> bytes:
    return png_bytes(Image.fromarray((np.arange(12 * 16, dtype=np.uint16) * 300).reshape(12, 16)))


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (10, 10), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


def _plain_png(colour: tuple[int, int, int], size: tuple[int, int] = (24, 24)) -> Callable[[], bytes]:
    return lambda: png_bytes(Image.new("RGB", size, colour))


@dataclass(frozen=True)
class Case:
    """One kind of input file: how to make it and what coverlens must make of it.

    `refused`: words the reason must contain when coverlens refuses the file; None for an odd but
    valid file that must be handled as a normal cover, whose facts are `size`, `mode` and `frames`.
    `locked`: the file must be unreadable (permission denied); see `make_unreadable`.
    """

    kind: str
    filename: str
    data: Callable[[], bytes]
    refused: str | None = None
    size: tuple[int, int] | None = None
    mode: str = "RGB"
    frames: int = 1
    locked: bool = False

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename
        path.write_bytes(self.data())
        return path


CORPUS: list[Case] = [
    Case("zero-byte", "zero.jpg", lambda: b"", refused="empty"),
    Case("truncated-jpeg", "truncated.jpg", lambda: _first_half(_noisy_jpeg()), refused="truncated"),
    Case("truncated-png", "truncated.png", lambda: _first_half(png_bytes(_noisy())), refused="truncated"),
    Case("random-bytes", "random.jpg", lambda: np.random.default_rng(1).bytes(2048), refused="not an image"),
    Case("text-as-png", "text.png", lambda: b"hello, I am a text file\n", refused="not an image"),
    Case("decompression-bomb", "bomb.png", bomb_png, refused="decompression bomb"),
    Case("permission-denied", "locked.jpg", jpeg_bytes, refused="permission denied", locked=True),
    Case("16-bit", "gray16.png", _sixteen_bit, size=(16, 12), mode="I;16"),
    Case("cmyk", "cmyk.jpg", _cmyk_jpeg, size=(20, 14), mode="CMYK"),
    Case("palette-transparency", "palette.png", _palette_with_transparency, size=(12, 10), mode="P"),
    Case("alpha", "alpha.png", lambda: png_bytes(Image.new("RGBA", (10, 8), (255, 0, 0, 128))), size=(10, 8),
         mode="RGBA"),
    Case("animated-gif", "animated.gif", _animated_gif, size=(10, 10), mode="P", frames=2),
    Case("1x1", "one.png", _plain_png((30, 200, 30), (1, 1)), size=(1, 1)),
    Case("huge-aspect", "wide.png", _plain_png((30, 30, 200), (4000, 10)), size=(4000, 10)),
    Case("unicode-name", "Ünïcødé カバー.png", _plain_png((250, 120, 0)), size=(24, 24)),
    Case("spaces-name", "my  cover with spaces .png", _plain_png((0, 120, 250)), size=(24, 24)),
    Case("newline-name", "line\nbreak.png", _plain_png((120, 0, 250)), size=(24, 24)),
]


def make_unreadable(path: Path, monkeypatch: pytest.MonkeyPatch, *, chmod: bool = True) -> None:
    """Make reading `path` fail with "permission denied", as `chmod 000` does.

    Not root and `chmod`: a real chmod 000, so the OS refuses. As root (CI) the OS ignores the mode
    bits, and an upload must stay readable for the client that sends it (`chmod=False`): there the
    refusal is simulated where coverlens reads files (`os.open`, and `Path.read_bytes`), raising the
    PermissionError the OS would, for this file name only (an upload reaches the server under its
    own name).
    """
    if chmod and os.geteuid() != 0:
        path.chmod(0)
        return
    real_read, real_open = Path.read_bytes, os.open

    def denied(name: object) -> None:
        if Path(os.fsdecode(name)).name == path.name:  # type: ignore[arg-type]
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))

    def read_bytes(self: Path) -> bytes:
        denied(self)
        return real_read(self)

    def open_(name: object, *args: object, **kwargs: object) -> int:
        denied(name)
        return real_open(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "open", open_)


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one file per refused kind that is plain bytes on disk; return file name -> expected reason words."""
    return {case.write(folder).name: case.refused for case in CORPUS if case.refused and not case.locked}
