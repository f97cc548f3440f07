"""The `coverlens` command line: parse, call the library, format. No logic lives here.

Each command group sits in its own module with a `register(subparsers)` function; modules import
heavy libraries (torch, fastai, chromadb) only inside their handlers, so `--help` stays fast.

`main` is the one error boundary: typed errors print one line and exit with their code (the table
is `coverlens.errors.EXIT_CODES`); an OSError that escaped becomes the typed error naming its path;
anything else is a bug, reported in one line with exit code 70. `--debug` (anywhere on the command
line, or $COVERLENS_DEBUG=1) shows the traceback as well.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from coverlens import __version__
from coverlens.errors import INTERNAL_ERROR_EXIT, INTERRUPTED_EXIT, CoverlensError, from_os_error

DEBUG_FLAG = "--debug"
DEBUG_ENV = "COVERLENS_DEBUG"

COMMAND_MODULES = (
    "coverlens.cli.library_commands",
    "coverlens.cli.model_commands",
    "coverlens.cli.index_commands",
    "coverlens.cli.search_commands",
    "coverlens.cli.text_commands",
    "coverlens.cli.app_commands",
    "coverlens.cli.eval_commands",
    "coverlens.cli.suggest_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coverlens",
        description="Cover-genre engine: catalog a cover library, train a genre classifier, "
        "index covers in Chroma, search, vote, cluster, evaluate, serve an app.",
    )
    parser.add_argument("--version", action="version", version=f"coverlens {__version__}")
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the full traceback of an error (for bug reports); also $COVERLENS_DEBUG=1")
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
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = _take_debug_flag(args_list) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        return int(args.handler(args) or 0)
    except CoverlensError as exc:
        return _report(f"coverlens: error: {exc}", exc.exit_code, debug)
    except OSError as exc:  # one that no layer named: the boundary names it
        error = from_os_error(exc)
        return _report(f"coverlens: error: {error}", error.exit_code, debug)
    except KeyboardInterrupt:
        print("coverlens: interrupted; re-run the same command to resume", file=sys.stderr)
        return INTERRUPTED_EXIT
    except RecursionError as exc:  # before Exception: a traceback of it would be thousands of lines
        return _report(f"coverlens: internal error: {exc}; re-run with {DEBUG_FLAG} and report it",
                       INTERNAL_ERROR_EXIT, False)
    except Exception as exc:
        return _report(f"coverlens: internal error: {type(exc).__name__}: {_one_line(exc)}; re-run with "
                       f"{DEBUG_FLAG} and report the traceback", INTERNAL_ERROR_EXIT, debug)


def _take_debug_flag(args: list[str]) -> bool:
    """Remove `--debug` wherever it stands before a `--`, so it works after the command name too."""
    end = args.index("--") if "--" in args else len(args)
    found = DEBUG_FLAG in args[:end]
    args[:end] = [a for a in args[:end] if a != DEBUG_FLAG]
    return found


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + "..."


def _report(message: str, code: int, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc(file=sys.stderr)
    print(message, file=sys.stderr)
    return code
