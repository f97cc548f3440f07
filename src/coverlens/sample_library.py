"""Procedurally drawn library of fake album covers, filed in genre folders.

Each genre has its own palette, shape family and title layout; every cover adds
random variation (positions, counts, sizes, colour jitter, a random title), so a
small CNN can learn the genre from the look without the images being identical.
"""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from coverlens.errors import ArgumentError

GENRE_NAMES: tuple[str, ...] = (
    "ambient", "country", "hiphop", "jazz", "metal", "pop", "classical",
    "reggae", "techno", "folk", "punk", "blues", "disco", "soul",
)

RGB = tuple[int, int, int]
# Per genre: (background, accent 1, accent 2) base colours.
_PALETTES: tuple[tuple[RGB, RGB, RGB], ...] = (
    ((170, 200, 225), (120, 160, 200), (225, 238, 246)),  # ambient
    ((200, 150, 90), (120, 70, 30), (235, 215, 170)),  # country
    ((25, 25, 30), (240, 200, 40), (200, 40, 160)),  # hiphop
    ((150, 30, 40), (240, 225, 190), (20, 20, 20)),  # jazz
    ((15, 15, 15), (150, 150, 150), (180, 20, 20)),  # metal
    ((255, 120, 190), (80, 220, 240), (255, 240, 90)),  # pop
    ((235, 225, 200), (140, 110, 60), (60, 50, 40)),  # classical
    ((30, 140, 60), (250, 210, 30), (200, 30, 30)),  # reggae
    ((10, 10, 40), (0, 230, 255), (120, 0, 255)),  # techno
    ((110, 140, 80), (220, 200, 140), (70, 50, 30)),  # folk
    ((250, 240, 20), (0, 0, 0), (240, 30, 120)),  # punk
    ((20, 50, 120), (90, 140, 220), (230, 230, 240)),  # blues
    ((120, 20, 140), (255, 200, 240), (255, 170, 0)),  # disco
    ((120, 60, 20), (255, 150, 50), (250, 230, 200)),  # soul
)
# Title vertical placement per genre, as a fraction of the height.
_LAYOUTS: tuple[float, ...] = (0.5, 0.08, 0.85, 0.08, 0.08, 0.5, 0.85,
                               0.85, 0.5, 0.08, 0.5, 0.85, 0.5, 0.08)

Img, Draw, Gen = Image.Image, ImageDraw.ImageDraw, np.random.Generator
Shape = Callable[[Img, Draw, Gen, int, RGB, RGB], None]


def _pick(rng: np.random.Generator, a: RGB, b: RGB) -> RGB:
    return a if rng.random() < 0.5 else b


def _circles(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    for _ in range(rng.integers(3, 9)):
        r, (x, y) = rng.integers(s // 12, s // 4), rng.integers(0, s, 2)
        d.ellipse([x - r, y - r, x + r, y + r], fill=_pick(rng, a, b))


def _stripes(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    y = int(rng.integers(0, s // 8))
    while y < s:
        h = int(rng.integers(s // 24 + 1, s // 8 + 2))
        d.rectangle([0, y, s, y + h], fill=_pick(rng, a, b))
        y += h + int(rng.integers(s // 24 + 1, s // 8 + 2))


def _triangles(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    for _ in range(rng.integers(3, 8)):
        x, w = int(rng.integers(0, s)), int(rng.integers(s // 10, s // 3))
        tip = (x + int(rng.integers(-w, w + 1)), int(rng.integers(0, s // 2)))
        d.polygon([(x - w, s), (x + w, s), tip], fill=_pick(rng, a, b))


def _blocks(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    k = int(rng.integers(3, 7))
    c = s / k
    for i in range(k):
        for j in range(k):
            if rng.random() < 0.45:
                d.rectangle([i * c + 2, j * c + 2, (i + 1) * c - 2, (j + 1) * c - 2], fill=_pick(rng, a, b))


def _rings(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    x, y = rng.integers(s // 4, 3 * s // 4, 2)
    w = int(rng.integers(2, max(3, s // 24)))
    for r in range(s, 0, -int(rng.integers(2 * w + 2, 4 * w + 4))):
        d.ellipse([x - r, y - r, x + r, y + r], outline=_pick(rng, a, b), width=w)


def _diagonal(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    x = -s + int(rng.integers(0, s // 6))
    while x < s:
        w = int(rng.integers(s // 16 + 1, s // 6 + 2))
        d.polygon([(x, s), (x + w, s), (x + w + s, 0), (x + s, 0)], fill=_pick(rng, a, b))
        x += w + int(rng.integers(s // 16 + 1, s // 5 + 2))


def _noise(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    k = int(rng.integers(4, 16))
    t = rng.random((k, k)).repeat(-(-s // k), 0).repeat(-(-s // k), 1)[:s, :s]
    t = 0.6 * t + 0.4 * rng.random((s, s))
    arr = np.asarray(img, dtype=np.float64) * 0.5
    arr += 0.5 * np.where(t[..., None] > 0.5, np.array(a), np.array(b))
    img.paste(Image.fromarray(arr.clip(0, 255).astype(np.uint8)))


def _squares(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    x, y = rng.integers(s // 3, 2 * s // 3, 2)
    step = int(rng.integers(s // 20 + 2, s // 8 + 3))
    for i, r in enumerate(range(s, 0, -step)):
        d.rectangle([x - r, y - r, x + r, y + r], fill=a if i % 2 else b)


def _dots(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    step = int(rng.integers(s // 10 + 2, s // 5 + 2))
    r = step // 3
    for x in range(step // 2, s, step):
        for y in range(step // 2, s, step):
            jx, jy = rng.integers(-2, 3, 2)
            d.ellipse([x + jx - r, y + jy - r, x + jx + r, y + jy + r], fill=_pick(rng, a, b))


def _bars(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    for i, x in enumerate(np.sort(rng.integers(0, s, int(rng.integers(3, 7))))):
        d.rectangle([x, 0, x + int(rng.integers(s // 20 + 1, s // 7 + 2)), s], fill=a if i % 2 else b)


def _gridlines(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    step, w = int(rng.integers(s // 12 + 2, s // 5 + 2)), int(rng.integers(1, 3))
    off = int(rng.integers(0, step))
    for p in range(off, s, step):
        d.line([(p, 0), (p, s)], fill=a, width=w)
        d.line([(0, p), (s, p)], fill=b, width=w)


def _zigzag(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    for _ in range(rng.integers(3, 7)):
        y, n = int(rng.integers(0, s)), int(rng.integers(4, 12))
        amp = int(rng.integers(s // 20 + 1, s // 6 + 2))
        pts = [(s * i / n, y + (amp if i % 2 else -amp)) for i in range(n + 1)]
        d.line(pts, fill=_pick(rng, a, b), width=int(rng.integers(2, max(3, s // 20))))


def _rays(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    x, y = rng.integers(s // 4, 3 * s // 4, 2)
    n, phase = int(rng.integers(6, 16)), rng.random() * 2 * np.pi
    for i in range(n):
        ts = (phase + 2 * np.pi * i / n, phase + 2 * np.pi * (i + 0.5) / n)
        pts = [(x, y)] + [(x + 2 * s * np.cos(t), y + 2 * s * np.sin(t)) for t in ts]
        d.polygon(pts, fill=a if i % 2 else b)


def _checker(img: Img, d: Draw, rng: Gen, s: int, a: RGB, b: RGB) -> None:
    c, ox, oy = int(rng.integers(s // 10 + 2, s // 4 + 2)), *rng.integers(0, s // 8 + 1, 2)
    for i in range(-1, s // c + 1):
        for j in range(-1, s // c + 1):
            if (i + j) % 2:
                d.rectangle([ox + i * c, oy + j * c, ox + (i + 1) * c, oy + (j + 1) * c], fill=a)
    d.ellipse([s // 3, s // 3, 2 * s // 3, 2 * s // 3], fill=b)


_SHAPES: tuple[Shape, ...] = (_rings, _stripes, _blocks, _circles, _triangles, _dots, _squares,
                              _bars, _gridlines, _noise, _diagonal, _zigzag, _rays, _checker)


def _jitter(rng: np.random.Generator, c: RGB, amount: int = 25) -> RGB:
    return tuple(int(v) for v in np.clip(np.array(c) + rng.integers(-amount, amount + 1, 3), 0, 255))  # type: ignore[return-value]


def draw_cover(genre_index: int, rng: np.random.Generator, size: int) -> Image.Image:
    """Draw one RGB cover of `size` x `size` pixels in the style of genre `genre_index`."""
    if not 0 <= genre_index < len(GENRE_NAMES):
        raise ArgumentError(f"genre_index must be in 0..{len(GENRE_NAMES) - 1}, got {genre_index}")
    bg, a, b = (_jitter(rng, c) for c in _PALETTES[genre_index])
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    _SHAPES[genre_index](img, d, rng, size, a, b)
    title = "".join(chr(65 + int(i)) for i in rng.integers(0, 26, int(rng.integers(3, 11))))
    font = ImageFont.load_default(size=max(8, size // 10))
    left, top, right, bottom = d.textbbox((0, 0), title, font=font)
    tw, th = right - left, bottom - top
    x = int(rng.integers(2, max(3, size - tw - 2)))
    y = int(np.clip(_LAYOUTS[genre_index] * size - th / 2 + rng.integers(-3, 4), 1, max(1, size - th - 2)))
    d.rectangle([x - 3, y - 2, x + tw + 3, y + th + 3], fill=b)
    ink = (0, 0, 0) if 0.299 * b[0] + 0.587 * b[1] + 0.114 * b[2] > 128 else (255, 255, 255)
    d.text((x - left, y - top), title, font=font, fill=ink)
    return img


def make_sample_library(root: Path | str, *, genres: int = 4, per_genre: int = 30, size: int = 128,
                        seed: int = 0, progress: bool = False, overwrite: bool = False,
                        mislabelled: int = 0, near_duplicates: int = 0, unlabelled: int = 0) -> list[Path]:
    """Write `per_genre` JPEG covers into root/<genre name>/ per genre; return written paths, sorted.

    `mislabelled` extra covers are drawn in the next genre's style but filed under this one
    (`<genre>_odd_N.jpg`), and `near_duplicates` covers get a re-encoded copy (`..._copy.jpg`):
    the label noise and repeats a real library has, for `suspects` and `inspect` to find.
    `unlabelled` covers (genres in turn) go directly under root, which makes them unlabelled; their
    hidden genres are written to root/hidden-genres.csv (path,genre) to score suggestions against.

    Raises FileExistsError if `root` exists and is non-empty (unless `overwrite`),
    ArgumentError for out-of-range arguments. Same arguments give byte-identical files.
    """
    if not 1 <= genres <= len(GENRE_NAMES):
        raise ArgumentError(f"genres must be in 1..{len(GENRE_NAMES)}, got {genres}")
    if per_genre < 1:
        raise ArgumentError(f"per_genre must be >= 1, got {per_genre}")
    if size < 16:
        raise ArgumentError(f"size must be >= 16, got {size}")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} is not empty; pass overwrite=True to write into it anyway")
    written: list[Path] = []
    seen: set[str] = set()
    for g in range(genres):
        folder = root / GENRE_NAMES[g]
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, g])
        for i in range(per_genre):
            while True:  # redraw on the (unlikely) event of a byte-identical cover
                buf = io.BytesIO()
                draw_cover(g, rng, size).save(buf, format="JPEG", quality=90)
                digest = hashlib.md5(buf.getvalue()).hexdigest()
                if digest not in seen:
                    seen.add(digest)
                    break
            path = folder / f"{GENRE_NAMES[g]}_{i + 1:04d}.jpg"
            path.write_bytes(buf.getvalue())
            written.append(path)
        if progress:
            print(f"sample library: {GENRE_NAMES[g]} done ({g + 1}/{genres})", file=sys.stderr)
    written += _plant_noise(root, genres, size, seed, mislabelled, near_duplicates, written)
    written += _unlabelled(root, genres, size, seed, unlabelled)
    return sorted(written)


def _unlabelled(root: Path, genres: int, size: int, seed: int, count: int) -> list[Path]:
    rng = np.random.default_rng([seed, 20_000])
    paths, hidden = [], ["path,genre"]
    for n in range(count):
        path = root / f"unlabelled_{n + 1:04d}.jpg"
        draw_cover(n % genres, rng, size).save(path, format="JPEG", quality=90)
        paths.append(path)
        hidden.append(f"{path.name},{GENRE_NAMES[n % genres]}")
    if count:
        (root / "hidden-genres.csv").write_text("\n".join(hidden) + "\n", encoding="utf-8")
    return paths


def _plant_noise(root: Path, genres: int, size: int, seed: int, mislabelled: int, near_duplicates: int,
                 clean: list[Path]) -> list[Path]:
    """Mislabelled covers (another genre's look in this genre's folder) and near-identical copies."""
    from PIL import Image

    rng = np.random.default_rng([seed, 10_000])
    planted: list[Path] = []
    for n in range(mislabelled if genres > 1 else 0):
        home = n % genres
        path = root / GENRE_NAMES[home] / f"{GENRE_NAMES[home]}_odd_{n + 1:02d}.jpg"
        draw_cover((home + 1) % genres, rng, size).save(path, format="JPEG", quality=90)
        planted.append(path)
    step = max(1, len(clean) // near_duplicates) if near_duplicates else 1
    for source in clean[::step][:near_duplicates]:  # spread over the genres
        copy = source.with_name(f"{source.stem}_copy.jpg")
        Image.open(source).convert("RGB").save(copy, format="JPEG", quality=95)  # same picture, other bytes
        planted.append(copy)
    return planted
