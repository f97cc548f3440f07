"""Generated covers with words drawn on them (Pillow's scalable default font), for the text tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def word_cover(words: list[str], *, size: int = 200, background: tuple[int, int, int] = (20, 40, 70),
               ink: tuple[int, int, int] = (250, 250, 250), font_size: int | None = None) -> Image.Image:
    """A plain cover with one word per line, large enough for OCR to read."""
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size or max(12, size // 8))
    step = size // (len(words) + 1)
    for row, word in enumerate(words, start=1):
        draw.text((size // 12, row * step - step // 3), word, fill=ink, font=font)
    return image


def write_word_covers(folder: Path, covers: dict[str, list[str]], size: int = 200) -> dict[str, Path]:
    """name -> words: write one PNG per name, return name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, (name, words) in enumerate(covers.items()):
        shade = (20 + 13 * index % 80, 40, 70 + 7 * index % 60)
        path = folder / f"{name}.png"
        word_cover(words, size=size, background=shade).save(path)
        paths[name] = path
    return paths
