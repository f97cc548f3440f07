"""Decoding the text files a person hands over (manifests, genre maps) with line-precise errors.

Accepted: UTF-8, with or without a byte-order mark. Anything else is refused with the line
where it goes wrong, so a person can find the byte in an editor, rather than a decoder traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_TEXT_BYTES = 256 * 1024 * 1024  # far above any manifest; stops /dev/zero-like reads early


class TextFileProblem(Exception):
    """Why a text file cannot be used; `line` is 1-based (0 when it concerns the whole file)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line else message)


def _line_of(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def read_text(path: Path) -> str:
    """The text of a regular UTF-8 file (BOM dropped), or raise `TextFileProblem`."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise TextFileProblem(0, "not a regular file")
        if info.st_size > MAX_TEXT_BYTES:
            raise TextFileProblem(0, f"{info.st_size:,} bytes, above the {MAX_TEXT_BYTES // 2**20} MiB limit")
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise TextFileProblem(0, "file not found") from exc
    except PermissionError as exc:
        raise TextFileProblem(0, "permission denied") from exc
    except OSError as exc:
        raise TextFileProblem(0, f"cannot read ({exc.strerror or exc})") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TextFileProblem(1, "the file is UTF-16 text; save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _line_of(data, nul)
        raise TextFileProblem(line, f"a NUL byte at column {column} (a binary file, or not UTF-8 text)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _line_of(data, exc.start)
        raise TextFileProblem(
            line, f"not UTF-8 text (byte 0x{data[exc.start]:02X} at column {column}); save the file as UTF-8"
        ) from exc
