"""`index_covers`: bring every embedder's collection in line with the catalog, resumably.

Stages: plan (catalog vs store) -> delete gone covers, rewrite changed metadata -> read and
preprocess (ahead, in a thread) -> embed (each embedder that lacks the cover, in the caller's
thread) -> write (upsert, behind, in a thread). Each batch is written as soon as it is embedded and
cover ids are content hashes, so a run killed at any point (even kill -9) loses at most the batches
in flight: the next run's plan sees exactly what is missing, and upsert makes a batch written twice
harmless.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coverlens.catalog import distinct_covers, library_root, load_catalog
from coverlens.errors import ModelError
from coverlens.indexer.pipeline import Preparer, PreparingEmbedder, ReadBatch, WriteBehind, read_ahead
from coverlens.indexer.plan import CollectionPlan, Cover, covers_from_catalog, plan_collection
from coverlens.locks import workspace_writer
from coverlens.store.freshness import RUN_STARTED

if TYPE_CHECKING:
    from coverlens.embedders import Embedder
    from coverlens.store import CoverStore
    from coverlens.workspace import Workspace

Progress = Callable[[Iterable[Any], int], Iterable[Any]]
DEFAULT_BATCH_SIZE = 64
# Applies a run's plan: deletes, metadata updates, then read -> embed -> write of the missing covers;
# returns the unreadable covers. `_write` runs in this process; `ray_runner.write_on_ray` on a cluster.
Writer = Callable[["Workspace", dict[str, Cover], list["_Target"], dict[str, float], int, "int | None",
                   "Progress | None"], list[tuple[str, str]]]


@dataclass
class CollectionReport:
    embedder: str
    collection: str
    stored_before: int
    added: int = 0
    deleted: int = 0
    updated: int = 0
    stored_after: int = 0


@dataclass
class IndexReport:
    covers: int  # distinct readable covers in the catalog
    collections: list[CollectionReport]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): unreadable now
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    seconds: float = 0.0

    @property
    def embedded(self) -> int:
        return sum(c.added for c in self.collections)

    def summary_lines(self) -> list[str]:
        lines = []
        for c in self.collections:
            lines.append(f"{c.collection}: {c.stored_after:,} covers (+{c.added:,} embedded, "
                         f"-{c.deleted:,} deleted, {c.updated:,} metadata updated)")
        for path, reason in self.failures[:20]:
            lines.append(f"skipped unreadable cover {path}: {reason}")
        if len(self.failures) > 20:
            lines.append(f"... and {len(self.failures) - 20} more unreadable covers skipped")
        staged = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in self.timings.items())
        lines.append(f"stages: {staged}; total {self.seconds:.2f}s")
        return lines


@dataclass
class _Target:
    embedder: Embedder
    plan: CollectionPlan
    report: CollectionReport


def _batches(covers: Sequence[Cover], size: int) -> list[list[Cover]]:
    return [list(covers[i:i + size]) for i in range(0, len(covers), size)]


def _timed(batches: Iterator[ReadBatch], timings: dict[str, float]) -> Iterator[ReadBatch]:
    """Yield from the reader, counting how long the model side waited for it."""
    while True:
        started = time.perf_counter()
        batch = next(batches, None)
        timings["wait for read"] += time.perf_counter() - started
        if batch is None:
            return
        timings["read + prepare (ahead)"] += batch.seconds
        yield batch


def _chosen(target: _Target, covers: list[Cover]) -> list[int]:
    """Positions in a batch of the covers this target's collection still lacks."""
    return [n for n, cover in enumerate(covers) if cover.id in target.plan.new]


def _preparer(target: _Target) -> Preparer | None:
    """Preprocessing to run in the reader thread, for embedders that can split it off."""
    embedder = target.embedder
    if not isinstance(embedder, PreparingEmbedder):
        return None

    def prepare(covers: list[Cover], images: list[Any]) -> tuple[list[int], Any]:
        chosen = _chosen(target, covers)
        return chosen, embedder.prepare([images[n] for n in chosen]) if chosen else None

    return prepare


def _embed_and_write(target: _Target, batch: ReadBatch, prepared: Any, timings: dict[str, float],
                     writer: WriteBehind) -> int:
    chosen = prepared[0] if prepared is not None else _chosen(target, batch.covers)
    if not chosen:
        return 0
    name = target.embedder.name
    started = time.perf_counter()
    if prepared is not None:
        vectors = target.embedder.embed_prepared(prepared[1])  # type: ignore[attr-defined]
    else:
        vectors = target.embedder.embed([batch.images[n] for n in chosen])
    timings[f"embed {name}"] += time.perf_counter() - started
    if getattr(vectors, "shape", None) != (len(chosen), target.embedder.dimension):
        raise ModelError(f"embedder {name} returned {getattr(vectors, 'shape', type(vectors))} "
                         f"for {len(chosen)} images of dimension {target.embedder.dimension}")
    covers = [batch.covers[n] for n in chosen]
    collection = target.plan.collection
    writer.submit(f"write {name} (behind)",
                  lambda: collection.upsert([c.id for c in covers], vectors, [c.metadata for c in covers]))
    return len(chosen)


def index_covers(
    workspace: Workspace,
    store: CoverStore,
    embedders: Sequence[Embedder],
    *,
    rebuild: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    readers: int | None = None,
    progress: Progress | None = None,
    writer: Writer | None = None,
) -> IndexReport:
    """Index the catalog's distinct covers with each embedder into its collection of `store`.

    Holds the workspace's writer lock. Each collection it writes to is marked incomplete before its
    first write and complete at the end of the run; a run killed or failed in between leaves it
    flagged. Readers in other processes are told through the store's generation.
    """
    with workspace_writer(workspace, "index"):
        return _index_covers(workspace, store, embedders, rebuild=rebuild, batch_size=batch_size,
                             readers=readers, progress=progress, writer=writer or _write)


def _index_covers(workspace: Workspace, store: CoverStore, embedders: Sequence[Embedder], *, rebuild: bool,
                  batch_size: int, readers: int | None, progress: Progress | None, writer: Writer) -> IndexReport:
    started = time.perf_counter()
    timings: dict[str, float] = defaultdict(float)
    covers = covers_from_catalog(distinct_covers(load_catalog(workspace)))

    targets = []
    for embedder in embedders:
        collection = store.collection_for(embedder.name, embedder.identity, create=True, rebuild=rebuild)
        plan = plan_collection(collection, covers)
        targets.append(_Target(embedder, plan, CollectionReport(embedder.name, collection.name, plan.stored)))
    timings["plan"] = time.perf_counter() - started

    writing = [t for t in targets if not t.plan.nothing_to_do or not t.plan.collection.is_complete]
    if not writing:
        return _report(targets, covers, [], timings, started)
    reason = f"an index run started {time.strftime('%Y-%m-%dT%H:%M:%S%z')} (pid {os.getpid()}) has not finished"
    for target in writing:
        target.plan.collection.mark_incomplete(reason)
    store.bump_generation(RUN_STARTED)
    try:
        failures = writer(workspace, covers, targets, timings, batch_size, readers, _publishing(store, progress))
        for target in writing:
            target.plan.collection.mark_complete()
    except BaseException:
        with contextlib.suppress(Exception):  # never hide why the run stopped (a full disk, say)
            store.bump_generation("index run stopped")  # readers reload: what was stored, flagged
        raise
    store.bump_generation("index run ended")
    return _report(targets, covers, failures, timings, started)


def _publishing(store: CoverStore, progress: Progress | None, every_s: float | None = None) -> Progress:
    """`progress`, and a new store generation every `every_s` seconds of the run (default
    `PUBLISH_EVERY_S`): readers in other processes then see the covers stored so far."""
    from coverlens.store.freshness import PUBLISH_EVERY_S, RUN_PROGRESS

    interval = PUBLISH_EVERY_S if every_s is None else every_s

    def wrap(items: Iterable[Any], total: int) -> Iterator[Any]:
        last = time.monotonic()
        for done, item in enumerate(progress(items, total) if progress else items, start=1):
            if time.monotonic() - last >= interval:
                store.bump_generation(f"{RUN_PROGRESS}: {done:,}/{total:,}")
                last = time.monotonic()
            yield item

    return wrap


def _report(targets: list[_Target], covers: dict[str, Cover], failures: list[tuple[str, str]],
            timings: dict[str, float], started: float) -> IndexReport:
    for target in targets:
        target.report.stored_after = target.plan.collection.count()
    return IndexReport(covers=len(covers), collections=[t.report for t in targets], failures=failures,
                       timings=dict(timings), seconds=time.perf_counter() - started)


def apply_plan_changes(covers: dict[str, Cover], targets: list[_Target], timings: dict[str, float]) -> None:
    """Delete the covers gone from the library and rewrite changed metadata (the vectors stay)."""
    step = time.perf_counter()
    for target in targets:
        target.plan.collection.delete(sorted(target.plan.gone))
        target.report.deleted = len(target.plan.gone)
        changed = sorted(target.plan.changed)
        target.plan.collection.update_metadata(changed, [covers[i].metadata for i in changed])
        target.report.updated = len(changed)
    timings["delete + update metadata"] = time.perf_counter() - step


def _write(workspace: Workspace, covers: dict[str, Cover], targets: list[_Target], timings: dict[str, float],
           batch_size: int, readers: int | None, progress: Progress | None) -> list[tuple[str, str]]:
    """Delete, update metadata, then read -> embed -> write what is missing; returns unreadable covers."""
    root = library_root(workspace)
    apply_plan_changes(covers, targets, timings)

    todo = sorted((covers[i] for i in set().union(*(t.plan.new for t in targets))), key=lambda c: c.path)
    failures: list[tuple[str, str]] = []

    def processed() -> Iterator[None]:
        reader = read_ahead(root, _batches(todo, batch_size), readers=readers,
                            preparers=[_preparer(t) for t in targets])
        writer = WriteBehind()
        try:
            for batch in _timed(reader, timings):
                failures.extend(batch.failures)
                for target, prepared in zip(targets, batch.prepared, strict=True):
                    target.report.added += _embed_and_write(target, batch, prepared, timings, writer)
                yield from (None for _ in range(len(batch.covers) + len(batch.failures)))
        finally:
            reader.close()  # stops and joins the reader thread, also when a stage failed
            try:
                writer.close()  # what was embedded gets stored, also when a later stage failed
            finally:
                timings["wait for write"] += writer.waited
                timings.update(writer.timings)

    for _ in (progress(processed(), len(todo)) if progress else processed()):
        pass
    return failures
