"""Training pixels: each cover decoded and resized ONCE into a cache, then served from memory.

On a small CPU the data pipeline, not the network, was the bottleneck (decode + resize + augment
per item, per epoch). Each cover is decoded and squashed to the training size once and kept as raw
uint8 in `workspace.cache_dir`, keyed by cover id (its content hash) and size; `loader.py` serves
batches from the stacked array and augments whole batches as tensors.

Covers are read with `coverlens.sources.open_cover`, so a picture embedded in an audio file is
read like an image file. Only labelled covers may be trained on: `training_rows` is the filter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import ImageError
from coverlens.preprocess import resize_cover
from coverlens.sources import FILE, open_cover
from coverlens.workspace import Workspace, atomic_path

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


CACHE_VERSION = 1  # bump when resize_cover changes, so stale pixels are not reused
Progress = Callable[[Iterable[Any], int], Iterable[Any]]


def pixel_cache_dir(workspace: Workspace, size: int) -> Path:
    return workspace.cache_dir / f"pixels-v{CACHE_VERSION}-{size}px"


def training_rows(covers: pd.DataFrame) -> pd.DataFrame:
    """The distinct covers a model may learn from: the train split, and never an unlabelled cover."""
    return covers[(covers["split"] == "train") & (covers["genre"] != "")].reset_index(drop=True)


def _cached(path: Path, size: int) -> np.ndarray | None:
    import numpy as np

    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if raw.size != size * size * 3:  # a file from an interrupted run: decode again
        return None
    return raw.reshape(size, size, 3)


def load_pixels(
    workspace: Workspace, root: Path, covers: Sequence[tuple[str, str] | tuple[str, str, str]], size: int, *,
    workers: int | None = None, progress: Progress | None = None,
) -> tuple[np.ndarray, list[int], list[str]]:
    """Pixels (n, size, size, 3) uint8 of the readable covers, their indices in `covers`, and
    "path: reason" for each unreadable one. `covers` holds (id, path relative to `root`[, source])."""
    import numpy as np

    folder = pixel_cache_dir(workspace, size)
    folder.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, str] | tuple[str, str, str]) -> np.ndarray | str:
        cover_id, relpath = item[0], item[1]
        target = folder / f"{cover_id}.u8"
        pixels = _cached(target, size)
        if pixels is not None:
            return pixels
        try:
            pixels = resize_cover(open_cover(root, relpath, item[2] if len(item) > 2 else FILE), size)
        except ImageError as exc:
            return f"{relpath}: {exc.reason}"
        with atomic_path(target) as tmp:
            pixels.tofile(tmp)
        return pixels

    with ThreadPoolExecutor(max_workers=workers or (os.cpu_count() or 1) + 1) as pool:
        results: Iterable[np.ndarray | str] = pool.map(one, covers)
        if progress is not None:
            results = progress(results, len(covers))
        arrays, kept, skipped = [], [], []
        for index, result in enumerate(results):
            if isinstance(result, str):
                skipped.append(result)
            else:
                arrays.append(result)
                kept.append(index)
    stacked = np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.uint8)
    return stacked, kept, skipped
