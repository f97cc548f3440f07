"""Catalog a real library from scratch, then again unchanged; print both times and their ratio.

Target (issue: foundation): the unchanged re-run takes under a tenth of the first.
Default: ../shared/datasets/book-covers-gray33 (32,581 files). Also checks the inspect figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dataset, line  # noqa: E402
from coverlens.catalog import load_catalog, run_catalog  # noqa: E402
from coverlens.inspect_report import overview  # noqa: E402
from coverlens.workspace import Workspace  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="book-covers-gray33")
    args = parser.parse_args()
    library = dataset(args.dataset)
    if library is None:
        return 0
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="bench-catalog-")))
    try:
        started = time.perf_counter()
        first = run_catalog(workspace, library)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = run_catalog(workspace, library)
        again_s = time.perf_counter() - started
        view = overview(load_catalog(workspace))
    finally:
        shutil.rmtree(workspace.root, ignore_errors=True)
    print(f"== catalog benchmark: {library}")
    line("files", f"{first.files:,} (read {first.read:,})")
    line("distinct images", f"{view.distinct:,}")
    line("label conflicts (ids under >1 genre)", f"{len(view.label_conflicts):,}")
    line("placeholders", ", ".join(f"{g.id} x{g.count}" for g in view.placeholders) or "none")
    line("catalog from scratch", f"{first_s:.2f} s")
    line("re-catalog unchanged", f"{again_s:.2f} s (read {again.read:,}, reused {again.reused:,})")
    ratio = again_s / first_s
    line("ratio re-run / first (target < 0.10)", f"{ratio:.3f} {'OK' if ratio < 0.1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
