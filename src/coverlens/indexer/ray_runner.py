"""Indexing on a Ray cluster: the read -> embed -> write stages as a Ray Data pipeline.

`write_on_ray(address, url)` gives a writer for `index_covers(..., writer=...)`: the plan, the
deletes and metadata updates, the incomplete/complete flags and the report stay the single-process
indexer's; only the covers missing from a collection go through Ray:

    read (tasks: decode) -> embed (actors holding the models; one GPU each when the cluster has
    GPUs) -> write (one actor: upserts into the Chroma server, batch by batch)

The words on the covers (`index`'s text stage) are read on the same cluster by OCR actors, in a
pass of their own: `coverlens.text.ray_reads`.

The store must be a Chroma server: every Ray worker writes, and writers to one embedded store
directory must be one process. `address` is a Ray cluster address (`ray://HOST:10001`, `HOST:6379`)
or `auto`: the cluster this process is already connected to, else a new local one. The workers need
coverlens installed (same version), and read the library at the same path as the driver.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coverlens.errors import CoverlensError, StoreError
from coverlens.indexer.ray_stages import EmbedCovers, WriteCovers, cover_rows, read_covers

if TYPE_CHECKING:
    from coverlens.indexer.plan import Cover
    from coverlens.indexer.run import Progress, Writer, _Target
    from coverlens.workspace import Workspace

RAY_AUTO = "auto"
EMBEDDED_REFUSED = ("indexing on Ray needs a Chroma server (--chroma-url http://HOST:PORT, started with "
                    "`chroma run --path DIR`): every Ray worker writes, and the writers of one embedded store "
                    "directory must be one process")


class RayError(CoverlensError):
    """Ray is missing, or the cluster cannot be reached."""


def require_server(url: str | None) -> str:
    if not url:
        raise StoreError(EMBEDDED_REFUSED)
    return url


def connect(address: str) -> dict[str, float]:
    """Join the cluster at `address` (`auto`: the one already joined, else a local one); its resources."""
    try:
        import ray
    except ImportError as exc:
        raise RayError("indexing on Ray needs the ray package: pip install 'ray[data]'") from exc
    if not ray.is_initialized():
        try:
            ray.init(address=None if address == RAY_AUTO else address, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except Exception as exc:  # connection refused, version mismatch, bad address
            raise RayError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    return dict(ray.cluster_resources())


@dataclass(frozen=True)
class Plan:
    """How the stages are spread over the cluster."""

    embed_actors: int
    gpus_per_actor: float
    cpus_per_actor: float
    read_cpus: float = 0.5
    write_cpus: float = 0.25

    @classmethod
    def for_cluster(cls, resources: dict[str, float]) -> Plan:
        gpus, cpus = int(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        if gpus:
            return cls(embed_actors=gpus, gpus_per_actor=1.0, cpus_per_actor=1.0)
        # a CPU cluster: leave room for the read tasks and the writer beside the model actors
        return cls(embed_actors=max(1, int(cpus - 1) // 2), gpus_per_actor=0.0, cpus_per_actor=1.0)


def write_on_ray(address: str, url: str | None) -> Writer:
    """A writer for `index_covers` that embeds the missing covers on the Ray cluster at `address`."""
    url = require_server(url)

    def write(workspace: Workspace, covers: dict[str, Cover], targets: list[_Target], timings: dict[str, float],
              batch_size: int, readers: int | None, progress: Progress | None) -> list[tuple[str, str]]:
        from coverlens.catalog import library_root
        from coverlens.indexer.run import apply_plan_changes

        apply_plan_changes(covers, targets, timings)
        wants: dict[str, int] = {}
        for n, target in enumerate(targets):
            for cover_id in target.plan.new:
                wants[cover_id] = wants.get(cover_id, 0) | (1 << n)
        todo = sorted((covers[i] for i in wants), key=lambda c: c.path)
        if not todo:
            return []
        started = time.perf_counter()
        plan = Plan.for_cluster(connect(address))
        timings["ray connect"] = time.perf_counter() - started
        failures: list[tuple[str, str]] = []

        def processed() -> Iterator[None]:
            for batch in _run(todo, wants, targets, str(library_root(workspace)), url, plan, batch_size, readers):
                for n, target in enumerate(targets):
                    target.report.added += int(((batch["wrote"] >> n) & 1).sum())
                failures.extend((str(p), str(e)) for p, e in zip(batch["path"], batch["error"], strict=True) if e)
                yield from (None for _ in range(len(batch["id"])))

        started = time.perf_counter()
        for _ in (progress(processed(), len(todo)) if progress else processed()):
            pass
        timings["read + embed + write on ray"] = time.perf_counter() - started
        return failures

    return write


def _run(todo: list[Cover], wants: dict[str, int], targets: list[_Target], root: str, url: str, plan: Plan,
         batch_size: int, readers: int | None) -> Iterator[dict[str, Any]]:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # coverlens shows its own, per cover
    context.print_on_execution_start = False
    embedders = [t.embedder for t in targets]
    dataset = ray.data.from_items(cover_rows(todo, wants), override_num_blocks=max(1, len(todo) // batch_size))
    dataset = dataset.map_batches(read_covers, fn_kwargs={"root": root, "readers": readers or 4},
                                  batch_size=batch_size, batch_format="numpy", num_cpus=plan.read_cpus)
    dataset = dataset.map_batches(EmbedCovers, fn_constructor_kwargs={
        "embedders": embedders, "device": "cuda" if plan.gpus_per_actor else None},
        batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=plan.embed_actors),
        num_cpus=plan.cpus_per_actor, num_gpus=plan.gpus_per_actor or None)
    collections = [(t.plan.collection.embedder, t.plan.collection.identity) for t in targets]
    dataset = dataset.map_batches(WriteCovers, fn_constructor_kwargs={"url": url, "collections": collections},
                                  batch_size=batch_size, batch_format="numpy",
                                  compute=ray.data.ActorPoolStrategy(size=1),
                                  num_cpus=plan.write_cpus)
    yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
