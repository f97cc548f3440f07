"""Indexing in one process and on a local Ray cluster, side by side in one run: covers/s and ratios.

The same GENERATED library is catalogued into two workspaces (same content ids), each with its own
Chroma server (`chroma run` on loopback). Then, in one run:
- one process: `index_covers` (read ahead -> embed -> write behind) with the ImageNet mobilenet_v2
  embedder, then the text stage (OCR, `--cpus` worker processes);
- Ray: a local cluster of `--cpus` CPUs (`ray.init(num_cpus=...)`), then the same two stages through
  `write_on_ray` (read tasks -> embed actors -> write actor) and `read_on_ray` (OCR actors).

For each it prints the total time, covers/s, and the split between the fixed start (until the first
cover comes back: worker processes, model load, actor start) and the steady rate after it (timed
from the progress callback, cover by cover), the steady rate per worker (embed actors, OCR actors;
the local indexer is one process, its text stage `--cpus` processes), and the ratios Ray / one
process. It checks that both runs stored the same covers and the same text.

On a 2-core machine Ray cannot be faster (a CPU cluster of 2 gets one embed actor, single-threaded,
against one process using both cores): the point is its overhead, and the per-worker rate to
extrapolate a cluster from. The covers are generated (128 px by default), not real ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import line  # noqa: E402


class Clock:
    """A progress callback that notes when each cover came back. Covers of one batch come back
    together (within `together` seconds): the steady rate is counted from batch arrival to arrival."""

    together = 0.005

    def __init__(self) -> None:
        self.started = 0.0
        self.times: list[float] = []

    def __call__(self, items: Iterable[Any], total: int) -> Iterator[Any]:
        self.started = time.perf_counter()
        for item in items:
            self.times.append(time.perf_counter())
            yield item

    def figures(self) -> dict[str, float]:
        times, count = self.times, len(self.times)
        total = times[-1] - self.started if times else 0.0
        first = 1  # the covers that came back with the first one
        while first < count and times[first] - times[first - 1] < self.together:
            first += 1
        steady = (count - first) / (times[-1] - times[first - 1]) if count > first else 0.0
        return {"covers": count, "seconds": total, "rate": count / total if total else 0.0,
                "start": times[0] - self.started if times else 0.0, "steady": steady}


def copy_catalog(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for name in ("catalog.csv", "library.json", "workspace.json"):
        (target / name).write_bytes((source / name).read_bytes())


def run_mode(workspace: Any, folder: Path, embedder: Any, *, ray_address: str | None, workers: int,
             batch_size: int) -> tuple[dict[str, float], dict[str, float], int]:
    """(embed figures, text figures, covers stored) of one mode, into its own Chroma server."""
    from coverlens.indexer import index_covers
    from coverlens.store import CoverStore
    from coverlens.text.stage import read_workspace_text
    from local_servers import chroma_server

    writer = reads = None
    if ray_address:
        from coverlens.indexer.ray_runner import write_on_ray
        from coverlens.text.ray_reads import read_on_ray

        reads = read_on_ray(ray_address)
    with chroma_server(folder, workspace) as url:
        if ray_address:
            writer = write_on_ray(ray_address, url)
        embed = Clock()
        with CoverStore.open(workspace, url=url, writer=True) as store:
            index_covers(workspace, store, [embedder], batch_size=batch_size, progress=embed, writer=writer)
            stored = store.collection_for(embedder.name, embedder.identity).count()
    text = Clock()
    read_workspace_text(workspace.root, workers=workers, progress=text, reads=reads)
    return embed.figures(), text.figures(), stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covers", type=int, default=160, help="generated covers (default 160)")
    parser.add_argument("--size", type=int, default=128, help="cover size in pixels (default 128)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster, and OCR processes")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import ray

    from coverlens.catalog import run_catalog
    from coverlens.embedders.backbone import ImagenetBackboneEmbedder
    from coverlens.indexer.ray_runner import Plan
    from coverlens.sample_library import make_sample_library
    from coverlens.text.ocr import OcrSettings
    from coverlens.text.ray_reads import text_actors
    from coverlens.text.store import TextStore, text_db_path
    from coverlens.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="bench-ray-index-"))
    make_sample_library(root / "lib", genres=4, per_genre=max(1, args.covers // 4), size=args.size, seed=0)
    local_ws = Workspace(root / "ws-local")
    run_catalog(local_ws, root / "lib")
    copy_catalog(local_ws.root, root / "ws-ray")
    ray_ws = Workspace(root / "ws-ray")
    embedder = ImagenetBackboneEmbedder()
    print(f"GENERATED library: {4 * max(1, args.covers // 4)} covers at {args.size} px; embedder "
          f"{embedder.name} ({embedder.identity.get('arch')}, {embedder.dimension}-d); load average "
          f"{os.getloadavg()[0]:.1f} at start ({os.cpu_count()} cores)")

    local_embed, local_text, local_stored = run_mode(local_ws, root / "chroma-local", embedder, ray_address=None,
                                                     workers=args.cpus, batch_size=args.batch_size)
    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
    ray_start = time.perf_counter() - started
    resources = ray.cluster_resources()
    try:
        ray_embed, ray_text, ray_stored = run_mode(ray_ws, root / "chroma-ray", embedder, ray_address="auto",
                                                   workers=args.cpus, batch_size=args.batch_size)
    finally:
        ray.shutdown()
    embed_actors = Plan.for_cluster(resources).embed_actors
    ocr_actors = text_actors(resources, OcrSettings(), int(ray_text["covers"]))
    with TextStore(text_db_path(local_ws.root)) as mine, TextStore(text_db_path(ray_ws.root)) as theirs:
        same_text = mine.dump() == theirs.dump()

    print(f"load average {os.getloadavg()[0]:.1f} at the end; ray.init of a {args.cpus}-CPU local cluster: "
          f"{ray_start:.1f} s (not in the figures below)")
    print(f"{'stage':<22} {'covers':>6} {'total s':>8} {'covers/s':>8} {'start s':>8} {'steady/s':>9} "
          f"{'workers':>7} {'per worker/s':>12}")
    rows = [("embed, one process", local_embed, 1), ("embed, Ray", ray_embed, embed_actors),
            ("OCR, one process", local_text, args.cpus), ("OCR, Ray", ray_text, ocr_actors)]
    for name, f, workers in rows:
        print(f"{name:<22} {f['covers']:>6.0f} {f['seconds']:>8.1f} {f['rate']:>8.2f} {f['start']:>8.1f} "
              f"{f['steady']:>9.2f} {workers:>7} {f['steady'] / workers:>12.2f}")
    for stage, mine_, theirs_ in (("embed", local_embed, ray_embed), ("OCR", local_text, ray_text)):
        line(f"{stage}: Ray / one process, covers/s", f"{theirs_['rate'] / mine_['rate']:.2f}")
        if mine_["steady"]:
            line(f"{stage}: Ray / one process, steady rate", f"{theirs_['steady'] / mine_['steady']:.2f}")
    line("same covers stored", f"{'yes' if local_stored == ray_stored else 'NO'} ({local_stored} / {ray_stored})")
    line("same text store (every row)", "yes" if same_text else "NO")
    return 0 if same_text and local_stored == ray_stored else 1


if __name__ == "__main__":
    raise SystemExit(main())
