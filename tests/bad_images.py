"""A corpus of bad and unusual image files, made in code: each kind is one function."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


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


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one file per unusable kind; return file name -> expected words in the reason."""
    folder.mkdir(parents=True, exist_ok=True)
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    full_png = png_bytes(noisy)
    full_jpg = io.BytesIO()
    noisy.save(full_jpg, "JPEG")
    files = {
        "zero.jpg": (b"", "empty"),
        "truncated.jpg": (full_jpg.getvalue()[: len(full_jpg.getvalue()) // 2], "truncated"),
        "truncated.png": (full_png[: len(full_png) // 2], "truncated"),
        "random.jpg": (os.urandom(2048), "not an image"),
        "text.png": (b"hello, I am a text file\n", "not an image"),
        "bomb.png": (bomb_png(), "decompression bomb"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: reason for name, (_, reason) in files.items()}
