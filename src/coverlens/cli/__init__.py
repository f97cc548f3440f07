"""The `coverlens` command line: parse, call the library, format. No logic lives here.

Each command group sits in its own module with a `register(subparsers)` function; modules import
heavy libraries (torch, fastai, chromadb) only inside their handlers, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from coverlens import __version__
from coverlens.errors import CoverlensError

COMMAND_MODULES = (
    "coverlens.cli.library_commands",
    "coverlens.cli.model_commands",
    "coverlens.cli.index_commands",
    "coverlens.cli.search_commands",
    "coverlens.cli.app_commands",
    "coverlens.cli.eval_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coverlens",
        description="Cover-genre engine: catalog a cover library, train a genre classifier, "
        "index covers in Chroma, search, vote, cluster, evaluate, serve an app.",
    )
    parser.add_argument("--version", action="version", version=f"coverlens {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Before torch loads: OpenMP threads that spin while waiting slowed training ~30x on a busy
    # 2-core machine (passive waiting; its cost on an idle machine was not measured).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CoverlensError as exc:
        print(f"coverlens: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("coverlens: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
