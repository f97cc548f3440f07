"""One pass over a list of covers: decode each image once, feed every model in batches, time each.

Decoding runs in a small thread pool with a bounded look-ahead (PIL releases the GIL), so the
models are not starved and memory stays at a few batches however large the split is.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import CoverlensError, ImageError
from coverlens.sources import FILE, cover_name, open_cover

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

Consumer = Callable[[list["Image.Image"]], Any]  # images -> (n, d) array
Progress = Callable[[Iterable[Any], int], Iterable[Any]]


@dataclass(frozen=True)
class CoverRef:
    """A library cover as the one cover reader opens it: the file (relative to `root`) and where
    the picture is inside it, so pictures embedded in audio files are scored like image files."""

    root: Path
    path: str
    source: str = FILE

    def open(self) -> Image.Image:
        return open_cover(self.root, self.path, self.source)

    def __str__(self) -> str:
        return cover_name(self.root / self.path, self.source)


@dataclass
class Feed:
    """A model fed by the pass; `wanted` limits it to some covers (indices into the pass's paths)."""

    consume: Consumer
    wanted: set[int] | None = None
    with_rows: bool = False  # consume(cover indices, images): for models that use what is stored per cover


def signal_feed(model: Any, ids: Sequence[str], tta: bool = False) -> Feed:
    """A genre signal's feed: `predict_covers(cover ids, images)` where the signal offers it (it then uses
    what is stored per cover, e.g. the words read), else `predict_proba(images)`. `ids[i]` names cover i."""
    if hasattr(model, "predict_covers"):
        return Feed(lambda rows, images: model.predict_covers([ids[r] for r in rows], images, tta=tta),
                    with_rows=True)
    return Feed(lambda images: model.predict_proba(images, tta=tta))


@dataclass
class PassResult:
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # key -> rows, in `rows[key]` order
    rows: dict[str, list[int]] = field(default_factory=dict)  # key -> cover index of each output row
    seconds: dict[str, float] = field(default_factory=dict)  # key -> time spent inside the model
    failed: dict[str, str] = field(default_factory=dict)  # key -> why the model stopped
    decoded: list[int] = field(default_factory=list)  # covers that opened
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    wall_seconds: float = 0.0


def _open(cover: CoverRef) -> tuple[Image.Image | None, str]:
    try:
        return cover.open(), ""
    except ImageError as exc:
        return None, exc.reason


def _decode_ahead(paths: Sequence[CoverRef], indices: Sequence[int], workers: int,
                  lookahead: int) -> Iterator[tuple[int, tuple[Image.Image | None, str]]]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        todo = iter(indices)
        pending: deque[tuple[int, Any]] = deque()
        for index in todo:
            pending.append((index, pool.submit(_open, paths[index])))
            if len(pending) >= lookahead:
                break
        while pending:
            index, future = pending.popleft()
            following = next(todo, None)
            if following is not None:
                pending.append((following, pool.submit(_open, paths[following])))
            yield index, future.result()


def run_pass(
    paths: Sequence[CoverRef],
    feeds: dict[str, Feed],
    *,
    batch_size: int = 64,
    workers: int = 4,
    progress: Progress | None = None,
) -> PassResult:
    """Decode the covers some feed wants, once each, and hand them to the feeds in batches.

    A feed that raises a `CoverlensError` (a model file gone bad, say) is recorded in `failed`
    and not called again; the others go on. Unreadable covers are skipped for every feed alike.
    """
    import numpy as np

    result = PassResult(seconds={key: 0.0 for key in feeds})
    chunks: dict[str, list[np.ndarray]] = {key: [] for key in feeds}
    result.rows = {key: [] for key in feeds}
    needed = sorted(set().union(*(range(len(paths)) if f.wanted is None else f.wanted
                                  for f in feeds.values()))) if feeds else []
    started = time.perf_counter()

    def flush(batch: list[tuple[int, Image.Image]]) -> None:
        for key, feed in feeds.items():
            if key in result.failed:
                continue
            chosen = [(i, im) for i, im in batch if feed.wanted is None or i in feed.wanted]
            if not chosen:
                continue
            began = time.perf_counter()
            try:
                images = [im for _, im in chosen]
                out = np.asarray(feed.consume([i for i, _ in chosen], images) if feed.with_rows  # type: ignore[call-arg]
                                 else feed.consume(images))
            except CoverlensError as exc:
                result.failed[key] = str(exc)
                continue
            finally:
                result.seconds[key] += time.perf_counter() - began
            if out.ndim != 2 or len(out) != len(chosen):
                raise ValueError(f"{key}: returned shape {out.shape} for {len(chosen)} images")
            chunks[key].append(out)
            result.rows[key].extend(i for i, _ in chosen)

    stream: Iterable[Any] = _decode_ahead(paths, needed, workers, lookahead=2 * batch_size)
    if progress is not None:
        stream = progress(stream, len(needed))
    batch: list[tuple[int, Image.Image]] = []
    for index, (image, reason) in stream:
        if image is None:
            result.unreadable.append((str(paths[index]), reason))
            continue
        result.decoded.append(index)
        batch.append((index, image))
        if len(batch) >= batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    result.outputs = {key: np.concatenate(parts) for key, parts in chunks.items() if parts}
    result.wall_seconds = time.perf_counter() - started
    return result
