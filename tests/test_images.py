from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_images import jpeg_bytes, make_unreadable, png_bytes, write_bad_files
from coverlens.errors import ImageError
from coverlens.images import decode_image, open_image


@pytest.mark.parametrize("name", ["zero.jpg", "truncated.jpg", "truncated.png", "random.jpg", "text.png", "bomb.png"])
def test_bad_files_raise_typed_error_naming_file_and_reason(tmp_path: Path, name: str) -> None:
    reasons = write_bad_files(tmp_path)
    with pytest.raises(ImageError) as caught:
        open_image(tmp_path / name)
    assert caught.value.path.endswith(name)
    assert reasons[name] in caught.value.reason
    assert name in str(caught.value)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        open_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="directory"):
        open_image(tmp_path)


def test_permission_denied_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(jpeg_bytes())
    make_unreadable(locked, monkeypatch)  # root ignores chmod 0: there the OS refusal is simulated
    with pytest.raises(ImageError, match="permission denied") as caught:
        open_image(locked)
    assert caught.value.path == str(locked)


def test_pixel_limit_is_configurable() -> None:
    data = jpeg_bytes((100, 100))
    assert open_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match="above the limit"):
        open_image(data, max_pixels=9_999)


def test_size_limit_for_uploads(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_bytes((300, 300)))
    with pytest.raises(ImageError, match="larger than"):
        open_image(path, max_bytes=100)


@pytest.mark.parametrize(
    "mode,maker",
    [
        ("L", lambda: Image.new("L", (8, 6), 128)),
        ("P", lambda: Image.new("RGB", (8, 6), (0, 128, 255)).convert("P")),
        ("CMYK", lambda: Image.new("CMYK", (8, 6), (0, 255, 255, 0))),
        ("I;16", lambda: Image.fromarray(np.full((6, 8), 65535, dtype=np.uint16))),
        ("1", lambda: Image.new("1", (8, 6), 1)),
    ],
)
def test_every_mode_becomes_rgb(mode: str, maker) -> None:
    image = maker()
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    rgb, facts = decode_image(buffer.getvalue())
    assert rgb.mode == "RGB" and rgb.size == (8, 6)
    assert facts.format == fmt


def test_sixteen_bit_white_stays_white() -> None:
    image = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    rgb = open_image(png_bytes(image))
    assert rgb.getpixel((0, 0)) == (255, 255, 255)


def test_alpha_is_composited_on_white() -> None:
    transparent = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert open_image(png_bytes(transparent)).getpixel((1, 1)) == (255, 255, 255)
    half = Image.new("LA", (4, 4), (0, 128))
    value = open_image(png_bytes(half)).getpixel((1, 1))
    assert all(120 <= v <= 135 for v in value)


def test_palette_with_transparency() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30] * 256)
    image.info["transparency"] = 0
    assert open_image(png_bytes(image)).getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    rgb, facts = decode_image(buffer.getvalue())
    assert facts.frames == 2
    red, green, blue = rgb.getpixel((5, 5))
    assert red > 200 and blue < 50


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert open_image(buffer.getvalue()).size == (20, 40)


def test_tiny_and_extreme_aspect_images_open() -> None:
    assert open_image(png_bytes(Image.new("RGB", (1, 1)))).size == (1, 1)
    assert open_image(png_bytes(Image.new("RGB", (4000, 2)))).size == (4000, 2)


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    """A device, a FIFO or a socket is refused before a byte is read (reading /dev/zero never ends)."""
    import os
    import socket

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock.jpg"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        for path, kind in [(Path("/dev/zero"), "character device"), (fifo, "FIFO"), (sock_path, "socket")]:
            with pytest.raises(ImageError, match=f"is a {kind}.*not a regular file") as caught:
                open_image(path)
            assert caught.value.path == str(path)
    finally:
        server.close()


def test_byte_limit_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coverlens.images import DEFAULT_MAX_BYTES, MAX_BYTES_ENV, read_image_bytes

    cover = tmp_path / "cover.jpg"
    data = jpeg_bytes((60, 60))
    cover.write_bytes(data)
    assert read_image_bytes(cover) == data and DEFAULT_MAX_BYTES == 64 * 2**20
    with pytest.raises(ImageError, match=f"above the limit of {len(data) - 1:,} bytes"):
        read_image_bytes(cover, max_bytes=len(data) - 1)
    monkeypatch.setenv(MAX_BYTES_ENV, str(len(data) - 1))
    with pytest.raises(ImageError, match=f"raise it with \\${MAX_BYTES_ENV}"):
        open_image(cover)
    monkeypatch.setenv(MAX_BYTES_ENV, "-5")
    from coverlens.errors import CoverlensError

    with pytest.raises(CoverlensError, match="not a positive whole number"):
        open_image(cover)
    sparse = tmp_path / "huge.jpg"  # 3 GiB on paper, no blocks on disk: only fstat may look at it
    with open(sparse, "wb") as handle:
        handle.truncate(3 * 2**30)
    monkeypatch.delenv(MAX_BYTES_ENV)
    with pytest.raises(ImageError, match="3,221,225,472 bytes, above the limit"):
        open_image(sparse)
