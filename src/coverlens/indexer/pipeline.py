"""The threads around the model: reading ahead of it, writing behind it.

A reader thread decodes the next batches (several files at a time: PIL releases the GIL while it
decodes) into a bounded queue while the model embeds the current one, so the model never waits
for a JPEG decoder unless decoding is truly the slower stage; the time it does wait is measured.

Embedders that can split `embed` into `prepare(images)` (resize, normalise, stack: CPU work) and
`embed_prepared(batch)` (the network) get their preprocessing done in the reader thread as well,
so the model's thread does nothing but the forward pass.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from coverlens.errors import ImageError
from coverlens.indexer.plan import Cover
from coverlens.sources import cover_name, open_cover

if TYPE_CHECKING:
    from PIL import Image

_DONE = object()


@runtime_checkable
class PreparingEmbedder(Protocol):
    """An Embedder whose preprocessing can run apart from (and ahead of) its network."""

    def prepare(self, images: Sequence[Image.Image]) -> Any: ...

    def embed_prepared(self, prepared: Any) -> Any: ...


# Given a batch's readable covers and images, what a stage prepares ahead (e.g. model input tensors).
Preparer = Callable[[list[Cover], list["Image.Image"]], Any]


@dataclass
class ReadBatch:
    covers: list[Cover]  # the readable covers of the batch, aligned with `images`
    images: list[Image.Image]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (cover name, reason)
    prepared: list[Any] = field(default_factory=list)  # one result per preparer (None: no preparer)
    seconds: float = 0.0  # wall time the reader spent on this batch (decode + prepare)


def default_readers() -> int:
    return max(2, min(8, os.cpu_count() or 1))


def read_batch(root: Path, covers: Sequence[Cover], pool: ThreadPoolExecutor,
               preparers: Sequence[Preparer | None] = ()) -> ReadBatch:
    """Open a batch of covers through the one cover reader (embedded pictures too; an unreadable
    cover is recorded, not raised), then run the preparers."""
    started = time.perf_counter()

    def load(cover: Cover) -> Image.Image | ImageError:
        try:
            return open_cover(root, cover.path, cover.source)
        except ImageError as exc:
            return exc

    batch = ReadBatch([], [])
    for cover, result in zip(covers, pool.map(load, covers), strict=True):
        if isinstance(result, ImageError):
            batch.failures.append((cover_name(cover.path, cover.source), result.reason))
        else:
            batch.covers.append(cover)
            batch.images.append(result)
    batch.prepared = [prepare(batch.covers, batch.images) if prepare else None for prepare in preparers]
    batch.seconds = time.perf_counter() - started
    return batch


def read_ahead(root: Path, batches: Sequence[Sequence[Cover]], *, readers: int | None = None,
               depth: int = 3, preparers: Sequence[Preparer | None] = ()) -> Iterator[ReadBatch]:
    """Yield the batches read, keeping up to `depth` read batches ready ahead of the consumer.

    If the consumer stops early (an error while embedding or writing), the reader thread is
    told to stop and is joined before the exception goes on.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with ThreadPoolExecutor(max_workers=readers or default_readers(),
                                    thread_name_prefix="coverlens-read") as pool:
                for covers in batches:
                    if not put(read_batch(root, covers, pool, preparers)):
                        return
        except BaseException as exc:  # hand any failure to the consumer, never lose it in the thread
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="coverlens-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, ReadBatch)
            yield item
    finally:
        stop.set()
        thread.join()


class WriteBehind:
    """Runs the writes in a thread of their own, in order, at most `depth` batches behind the model.

    A Chroma upsert of a batch costs real time on a large collection (the HNSW graph grows); done
    here, it overlaps the next batch's forward pass. The first failed write stops all later ones and
    is raised to the caller (at its next `submit`, or at `close`). `close` waits for the writes
    already handed over, so what was embedded is stored even when the run stops on an error.
    """

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self.timings: dict[str, float] = {}  # stage -> seconds, written by the writer thread only
        self.waited = 0.0  # seconds the caller waited for a free place in the queue
        self._thread = threading.Thread(target=self._work, name="coverlens-write-behind", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self.error is not None:
                continue  # drain without writing: nothing after a failed batch
            stage, write = item  # type: ignore[misc]
            started = time.perf_counter()
            try:
                write()
            except BaseException as exc:
                self.error = exc
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started

    def submit(self, stage: str, write: Callable[[], None]) -> None:
        if self.error is not None:
            raise self.error
        started = time.perf_counter()
        self._queue.put((stage, write))
        self.waited += time.perf_counter() - started

    def close(self) -> None:
        """Wait for the writes handed over; raise the first that failed."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        if self.error is not None:
            raise self.error
