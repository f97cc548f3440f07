"""Helpers shared by the benchmark scripts: where the real datasets are, and printing."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
OUTPUT = REPO / "bench-output"


def dataset(name: str) -> Path | None:
    """The folder of a shared dataset, or None (with a clear message) when it is not on this machine."""
    folder = DATASETS / name
    if not folder.is_dir():
        print(f"[skip] {folder} is missing: this benchmark needs ../shared/datasets/{name}", file=sys.stderr)
        return None
    return folder


def line(label: str, value: str) -> None:
    print(f"{label:<44} {value}")
