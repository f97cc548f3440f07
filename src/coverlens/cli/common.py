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


# argparse types: a value is used as given or refused here, with the rule it broke; never replaced.

def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _number(text: str) -> float:
    import math

    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `low`."""

    def parse(text: str) -> int:
        value = _whole(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"int_at_least_{low}"
    return parse


def int_in_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    parse.__name__ = f"int_in_{low}_{high}"
    return parse


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return int_at_least(1)(text)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0 (offsets, counts that may be none, seeds)."""
    return int_at_least(0)(text)


def share(text: str) -> float:
    """An argparse type: a share in [0, 1] (0.7, not 70)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1 (e.g. 0.7), got {text}")
    return value


def open_share(text: str) -> float:
    """An argparse type: a share in [0, 1), e.g. a held-out fraction or label smoothing."""
    value = share(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def similarity(text: str) -> float:
    """An argparse type: a cosine similarity in [-1, 1]."""
    value = _number(text)
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a similarity between -1 and 1, got {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (a learning rate)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a number of at least 0 (a weight, a distance)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def add_allow_incomplete(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--allow-incomplete", action="store_true",
                        help=f"replace a {command} report made from a complete store even though an index run "
                        "has not finished (the new report records that its store was incomplete)")


def warn(warnings: Iterable[str]) -> None:
    """Warnings about the answer (an incomplete store): on stderr, so stdout stays the answer."""
    for warning in warnings:
        print(f"coverlens: warning: {warning}", file=sys.stderr)


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
    """A service progress callback that draws one tqdm bar per stage (the service asks `track`).

    Run as an app's background job (`coverlens.child_process`, $COVERLENS_PROGRESS=lines), it prints
    progress lines on stderr instead, at most one per `LINE_EVERY_S` per stage, for the app to read.
    """

    LINE_EVERY_S = 0.2

    def __init__(self) -> None:
        import os

        from coverlens.child_process import PROGRESS_ENV

        self.lines = os.environ.get(PROGRESS_ENV) == "lines"
        self._last: tuple[str, float] = ("", 0.0)

    def __call__(self, fraction: float, message: str) -> None:  # the lines' callback (bars draw themselves)
        if not self.lines:
            return
        import time

        from coverlens.child_process import progress_line
        from coverlens.jobs import topic_of

        topic, now = topic_of(message), time.monotonic()
        last_topic, last_time = self._last
        if fraction >= 1.0 or topic != last_topic or now - last_time >= self.LINE_EVERY_S:
            self._last = (topic, now)
            print(progress_line(fraction, message), file=sys.stderr, flush=True)

    def track(self, label: str) -> Callable[[Iterable[T], int], Iterable[T]]:
        from coverlens.service_api import counting

        return counting(self, label) if self.lines else progress_bar(label)


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
