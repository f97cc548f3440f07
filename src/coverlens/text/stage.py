"""The text stage: read each distinct cover once by OCR, in worker processes, into the text store.

(Or on a Ray cluster: `coverlens.text.ray_reads`; only where the OCR runs changes, not what is below.)

- Only covers not yet stored, or stored by another reader identity, are read (incremental).
- One worker process per core, each with one onnxruntime thread; workers are recycled every
  `recycle_after` covers because RapidOCR's memory grows over long runs. Workers are spawned, not
  forked: the parent may hold torch/onnxruntime thread pools that do not survive a fork.
- The parent alone writes the store, one transaction per batch: a `kill -9` loses at most the batch
  in flight, and a re-run reads exactly the covers that are missing, so it ends with the same store
  as an uninterrupted run (OCR with one thread is deterministic).
- A cover that cannot be read (missing, corrupt, too large) is stored as a failure with its reason;
  it is not retried unless `retry_failed=True`.
- Workers open covers with `coverlens.sources.open_cover`, the reader the embedders use, so a
  picture embedded in an audio file (ID3 APIC, FLAC picture, MP4 covr) is read like an image file;
  only the (root, path, source) triple crosses the process boundary, never the pixels.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coverlens.errors import CoverlensError
from coverlens.sources import FILE, open_cover
from coverlens.text.ocr import OcrReader, OcrSettings, reader_identity
from coverlens.text.store import CoverText, TextStore


class TextStageError(CoverlensError):
    """The text stage could not go on (its worker processes failed)."""


Progress = Callable[[Iterable[Any], int], Iterable[Any]]
# What the stage is given per cover: (id, path) for an image file, or (id, path, source) where
# `source` names a picture inside the file (see coverlens.sources.read_cover).
CoverRef = tuple[str, str] | tuple[str, str, str]
# What a reader is sent per cover: (id, library root, path relative to it, source); never the pixels.
Item = tuple[str, str, str, str]
# How the items to read become records (in any order), given the settings, the worker count and
# `recycle_after`: in local worker processes (`read_locally`, the default), or on a Ray cluster
# (`coverlens.text.ray_reads.read_on_ray`). Either way `run_text_stage` alone writes the store.
Reads = Callable[[list[Item], OcrSettings, int, int], Iterator[CoverText]]
DEFAULT_BATCH = 32
DEFAULT_RECYCLE = 400


@dataclass(frozen=True)
class TextStageSummary:
    covers: int
    read: int
    failed: int
    reused: int
    seconds: float
    reader: str
    metadata: int = 0  # covers with metadata text (album/artist, book title/authors) in the store
    metadata_changed: int = 0  # of those, written now (new or changed), and removed (gone from the library)
    metadata_removed: int = 0

    def describe(self) -> str:
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        text = (f"text: {self.covers:,} covers, read {self.read:,} ({rate:.1f}/s), {self.failed:,} unreadable, "
                f"{self.reused:,} already stored")
        if self.metadata or self.metadata_removed:
            text += (f"; metadata text of {self.metadata:,} covers ({self.metadata_changed:,} written, "
                     f"{self.metadata_removed:,} removed)")
        return text


def covers_to_read(store: TextStore, covers: Sequence[CoverRef], reader: str, *,
                   retry_failed: bool = False) -> list[tuple[str, str, str]]:
    """The distinct covers `(id, path, source)` (first copy of each id) whose stored text is missing or
    from another reader."""
    stored = store.readers()
    failed: set[str] = set()
    if retry_failed:
        failed = {cid for cid, rec in store.get(stored).items() if rec.error}
    todo, seen = [], set()
    for cover_id, path, *source in covers:
        if cover_id in seen:
            continue
        seen.add(cover_id)
        if stored.get(cover_id) != reader or cover_id in failed:
            where = source[0] if source and isinstance(source[0], str) and source[0] else FILE  # "" or NaN: a file
            todo.append((cover_id, str(path), where))
    return todo


def _located(cover_id: str, path: str, source: str, root: Path | None) -> Item:
    """Split into (library root, relative path) as `open_cover` wants; without a root, a path stands
    for itself (its folder is the root)."""
    if root is not None:
        return cover_id, str(root), path, source
    where = Path(path)
    return cover_id, str(where.parent), where.name, source


# worker side ---------------------------------------------------------------------------------

_READER: OcrReader | None = None


def _init_worker(settings: OcrSettings) -> None:
    global _READER
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    _READER = OcrReader(settings)


def read_text_of(reader: OcrReader, item: Item) -> CoverText:
    """One cover's record: its lines, or the reason it could not be read (whoever holds the reader)."""
    cover_id, root, relpath, source = item
    try:
        return CoverText.read(cover_id, reader.identity, reader.read(open_cover(Path(root), relpath, source)))
    except CoverlensError as exc:
        return CoverText.failed(cover_id, reader.identity, getattr(exc, "reason", str(exc)))
    except Exception as exc:  # an OCR failure on one cover must not end the run
        return CoverText.failed(cover_id, reader.identity, f"OCR failed ({type(exc).__name__}: {exc})")


def _read_one(item: Item) -> CoverText:
    assert _READER is not None, "worker not initialised"
    return read_text_of(_READER, item)


# parent side ---------------------------------------------------------------------------------

def read_locally(todo: list[Item], settings: OcrSettings, workers: int,
                 recycle_after: int) -> Iterator[CoverText]:
    if workers <= 1:  # in-process: no spawn cost for a handful of covers, and easier to debug
        _init_worker(settings)
        yield from map(_read_one, todo)
        return
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies (or cannot start) breaks the
    # executor with an error instead of being respawned forever.
    context = multiprocessing.get_context("spawn")
    pending: set[Future[CoverText]] = set()
    items = iter(todo)
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(settings,),
                                 max_tasks_per_child=recycle_after) as pool:
            for item in itertools.islice(items, workers * 4):  # a short look-ahead keeps every worker busy
                pending.add(pool.submit(_read_one, item))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    nxt = next(items, None)
                    if nxt is not None:
                        pending.add(pool.submit(_read_one, nxt))
    except BrokenProcessPool as exc:
        raise TextStageError(f"an OCR worker process died or could not start ({exc}); what was read so far is "
                             "stored, re-run to continue") from exc
    finally:
        for future in pending:
            future.cancel()


def run_text_stage(
    store: TextStore,
    covers: Sequence[CoverRef],
    *,
    root: Path | None = None,
    settings: OcrSettings | None = None,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    recycle_after: int = DEFAULT_RECYCLE,
    retry_failed: bool = False,
    progress: Progress | None = None,
    reads: Reads | None = None,
) -> TextStageSummary:
    """Read the covers `(id, path[, source])` not yet in `store`; paths are relative to `root` when given
    (a library's covers: embedded pictures need it), else they are image files standing alone.
    `reads`: where the OCR runs (default: `workers` local processes)."""
    settings = settings or OcrSettings()
    reader = reader_identity(settings)
    distinct = {cover[0] for cover in covers}
    todo = [_located(*cover, root) for cover in covers_to_read(store, covers, reader, retry_failed=retry_failed)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    started = time.perf_counter()
    read = failed = 0
    batch: list[CoverText] = []
    reads = reads or read_locally
    results: Iterable[CoverText] = reads(todo, settings, workers, recycle_after) if todo else iter(())
    if progress is not None:
        results = progress(results, len(todo))
    for record in results:
        batch.append(record)
        failed += bool(record.error)
        read += not record.error
        if len(batch) >= batch_size:
            store.put(batch)
            batch = []
    if batch:
        store.put(batch)
    return TextStageSummary(len(distinct), read, failed, len(distinct) - len(todo),
                            time.perf_counter() - started, reader)


def prune_text(store: TextStore, catalog_ids: Iterable[str]) -> int:
    """Delete the stored text of covers no longer in the catalog; returns how many went."""
    keep = set(catalog_ids)
    return store.delete(cid for cid in store.readers() if cid not in keep)


def text_store_for(workspace_root: Path, *, readonly: bool = False) -> TextStore:
    """The workspace's text store (`<workspace>/text/text.db`)."""
    from coverlens.text.store import text_db_path

    return TextStore(text_db_path(workspace_root), readonly=readonly)


def read_workspace_text(workspace_root: Path, *, settings: OcrSettings | None = None, workers: int | None = None,
                        progress: Progress | None = None, prune: bool = True,
                        reads: Reads | None = None) -> TextStageSummary:
    """Run the text stage over a catalogued workspace's distinct covers (and forget removed ones); the
    store's metadata text is first made equal to the catalog's (`coverlens.text.metadata`)."""
    from dataclasses import replace

    from coverlens.catalog import distinct_covers, library_root, load_catalog
    from coverlens.text.metadata import metadata_of_catalog, sync_metadata
    from coverlens.workspace import Workspace

    workspace = Workspace(Path(workspace_root))
    frame = load_catalog(workspace)
    covers = distinct_covers(frame)
    refs = list(zip(covers["id"], covers["path"], covers["source"], strict=True))
    metadata = metadata_of_catalog(frame)
    with text_store_for(workspace.root) as store:
        written, removed = sync_metadata(store, metadata)  # cheap (no OCR): before the long part
        if prune:
            prune_text(store, covers["id"])
        summary = run_text_stage(store, refs, root=library_root(workspace), settings=settings, workers=workers,
                                 progress=progress, reads=reads)
    return replace(summary, metadata=len(metadata), metadata_changed=written, metadata_removed=removed)
