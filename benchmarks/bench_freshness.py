"""Cost of fresh reads: the per-query generation check, and one reset of the client.

Side by side in one run, on one store of synthetic vectors (no ../shared data needed): queries with
the check (one stat per operation) and with it switched off, then the time a reader takes to reopen
its client after another process changed the store.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from coverlens.store import CoverStore
from coverlens.store.freshness import SharedClient, write_generation
from coverlens.workspace import Workspace

IDENTITY = {"kind": "bench"}


def timed_queries(collection, queries: np.ndarray) -> float:
    started = time.perf_counter()
    for query in queries:
        collection.query(query, k=10)
    return (time.perf_counter() - started) / len(queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--covers", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.covers, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="bench-fresh-"))).ensure()
    with CoverStore.open(workspace, writer=True) as store:
        collection = store.collection_for("bench", IDENTITY, create=True)
        collection.upsert([f"c{i}" for i in range(args.covers)], vectors,
                          [{"path": f"{i}.jpg"} for i in range(args.covers)])
        store.bump_generation("bench filled")
    queries = vectors[rng.choice(args.covers, args.queries)]
    with CoverStore.open(workspace) as reader:
        collection = reader.collection_for("bench", IDENTITY)
        timed_queries(collection, queries[:20])  # load the segment once
        real = SharedClient.refresh
        checked, unchecked = [], []
        for _ in range(3):  # interleaved, so neither side gets the warmer machine
            checked.append(timed_queries(collection, queries))
            SharedClient.refresh = lambda self: False  # type: ignore[method-assign]
            unchecked.append(timed_queries(collection, queries))
            SharedClient.refresh = real  # type: ignore[method-assign]
        checked, unchecked = float(np.median(checked)), float(np.median(unchecked))
        resets = []
        for _ in range(3):
            generation = write_generation(workspace.store_dir, "bench change")
            assert generation.pid  # written by this process: pretend another one did
            reader._shared.stamp = None  # type: ignore[union-attr]
            reader._shared.writers = 0  # type: ignore[union-attr]
            started = time.perf_counter()
            reader._shared._reopen()  # type: ignore[union-attr]
            collection.query(queries[0], k=10)  # the first query after a reset loads the segment again
            resets.append(time.perf_counter() - started)
    print(f"{args.covers:,} covers x {args.dim}-d, {args.queries} queries of k=10")
    print(f"query with the freshness check:    {checked * 1000:.3f} ms")
    print(f"query without it:                  {unchecked * 1000:.3f} ms")
    print(f"ratio checked / unchecked:         {checked / unchecked:.3f}")
    print(f"reset + first query after a change: {np.median(resets) * 1000:.0f} ms (median of 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
