"""Argument helpers and progress bars shared by the command modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from coverlens.workspace import WORKSPACE_ENV, Workspace

T = TypeVar("T")


def add_workspace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace", "-w", default=None,
        help=f"workspace folder (default: ${WORKSPACE_ENV}, else ./coverlens-workspace)",
    )


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def workspace_of(args: argparse.Namespace) -> Workspace:
    """The chosen workspace. One written in another format is refused here, before any command reads it."""
    workspace = Workspace.resolve(args.workspace)
    if workspace.meta_file.exists():
        workspace.check_format()
    return workspace


def progress_bar(description: str) -> Callable[[Iterable[T], int], Iterable[T]]:
    """A `progress(iterable, total)` callable that draws a tqdm bar on stderr."""

    def wrap(iterable: Iterable[T], total: int) -> Iterable[T]:
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=description, unit="cover", file=sys.stderr,
                    disable=None, dynamic_ncols=True)

    return wrap


def print_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """A plain aligned text table on stdout."""
    if not rows:
        print("(none)")
        return
    columns = columns or list(rows[0])
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
