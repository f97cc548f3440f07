"""Run every benchmark in turn (`make bench`), each printing what it measured.

Benchmarks that need ../shared/datasets say so and skip when it is missing. Pass names to run
only some: `python benchmarks/run_all.py catalog index`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["catalog", "train", "index", "clusters", "evaluate", "similar", "text"]


def main(argv: list[str]) -> int:
    chosen = argv or ORDER
    failed = []
    for name in chosen:
        script = HERE / f"bench_{name}.py"
        print(f"\n######## bench_{name} ########", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"######## bench_{name}: exit {code} after {time.perf_counter() - started:.0f}s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
