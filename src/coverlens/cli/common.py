"""Argument helpers, progress bars and the service every command goes through."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from coverlens.registry import REGISTRY
from coverlens.workspace import WORKSPACE_ENV, Workspace

if TYPE_CHECKING:
    from coverlens.service import CoverlensService

T = TypeVar("T")
STORE_HELP = "Chroma server URL, e.g. http://127.0.0.1:8000 (default: the embedded store in the workspace)"
# How commands build their service: (workspace, chroma_url=, options=) -> service. Tests set it to
# inject fakes (a store, a registry) through the service's constructor; None: the real service.
SERVICE_FACTORY: Callable[..., CoverlensService] | None = None


def add_workspace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace", "-w", default=None,
        help=f"workspace folder (default: ${WORKSPACE_ENV}, else ./coverlens-workspace)",
    )


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chroma-url", default=None, help=STORE_HELP)


def add_embedder_choice(parser: argparse.ArgumentParser, help_text: str = "which stored vectors to use") -> None:
    """`--embedder`, its choices and default read from the registry."""
    parser.add_argument("--embedder", choices=REGISTRY.offered(), default=REGISTRY.default_embedder,
                        help=f"{help_text} (default: {REGISTRY.default_embedder})")


def add_embedder_options(parser: argparse.ArgumentParser) -> None:
    """The options the registered embedders take (e.g. which CLIP weights)."""
    for option in REGISTRY.options():
        parser.add_argument(option.flag, dest=option.key, default=None, help=option.help)


def open_service(args: argparse.Namespace) -> CoverlensService:
    """The service over the chosen workspace, with the store and embedder options given."""
    options = {o.key: getattr(args, o.key) for o in REGISTRY.options() if getattr(args, o.key, None) is not None}
    factory = SERVICE_FACTORY
    if factory is None:
        from coverlens.service import CoverlensService as factory
    return factory(workspace_of(args), chroma_url=getattr(args, "chroma_url", None), options=options)


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


class Bars:
    """A service progress callback that draws one tqdm bar per stage (the service asks `track`)."""

    def __call__(self, fraction: float, message: str) -> None:  # only for callers that skip `track`
        pass

    def track(self, label: str) -> Callable[[Iterable[T], int], Iterable[T]]:
        return progress_bar(label)


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
