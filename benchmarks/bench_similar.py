"""`similar` end to end, as a user sees it: decode the upload, embed it, query Chroma, vote.

Times `CoverlensService.search` (head prediction + nearest covers + KNN vote over the training
covers + cluster placement) for random covers of the library, after one warm-up query, and prints
p50 and p95. Target (issue: cover index): p95 under 100 ms at 32k covers.

Needs a workspace with a catalog and a trained model (`coverlens catalog`, `coverlens train`);
it indexes the fine-tuned embeddings first when they are missing (that time is printed too).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUTPUT, line  # noqa: E402
from coverlens.service import CoverlensService  # noqa: E402
from coverlens.workspace import Workspace  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=OUTPUT / "evaluate" / "album-covers-5",
                        help="default: the album workspace that bench_evaluate.py trains")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workspace = Workspace(args.workspace.resolve())
    if not (workspace.model_dir / "model.json").exists():
        print(f"[skip] {workspace.root} has no trained model: run `coverlens catalog` and `coverlens train` first")
        return 0
    service = CoverlensService(workspace)
    started = time.perf_counter()
    print(service.index(embedder="finetuned"))
    index_s = time.perf_counter() - started
    covers = service.library_covers(limit=10**9)
    paths = [service.cover_path(rel) for rel, _ in random.Random(args.seed).sample(covers, args.queries + 1)]
    service.search(paths[0], k=args.k)  # warm-up: loads the model, opens the store
    times = []
    for path in paths[1:]:
        started = time.perf_counter()
        result = service.search(path, k=args.k)
        times.append((time.perf_counter() - started) * 1000)
        assert len(result.neighbours) == args.k and result.vote is not None
    times.sort()
    p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95) - 1]
    print(f"== similar end to end: {workspace.root}")
    line("covers in the store", f"{service.status().indexed.get('finetuned', 0):,}")
    line("index (only what was missing)", f"{index_s:.1f} s")
    line("queries", f"{len(times)} (k={args.k}, head + neighbours + vote + cluster)")
    line("p50 / p95", f"{p50:.1f} ms / {p95:.1f} ms {'OK' if p95 < 100 else 'MISSED'} (target p95 < 100 ms)")
    service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
