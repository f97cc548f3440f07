"""Calling the CLI in the test process, as a person would from a shell: exit code, stdout, stderr."""

from __future__ import annotations

import pytest

from coverlens.cli import main


def exit_code(argv: list[str]) -> int:
    """`coverlens ARGV`'s exit code (argparse's own refusals exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = exit_code(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err
