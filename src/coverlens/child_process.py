"""Run a coverlens command in a child process, as a background job of the app.

Why a process: a job in a thread of the app's process (an index run: decoding, a CNN, Chroma
writes) holds the interpreter lock between the searches' steps and shares their torch pool, so
searches slow down most exactly when a job runs. A child process has its own lock, runs at a lower
CPU priority as a whole (`coverlens.jobs.JOB_NICE`), and writes the workspace as `coverlens` from a terminal
would: under the workspace writer lock, with a store generation the app follows (see
`coverlens.store.freshness`), resumable if stopped.

The child reports its progress on stderr as `coverlens-progress {"fraction": f, "message": m}`
lines (the CLI does so when `PROGRESS_ENV` is `lines`); its other stderr lines are its notes and
its error, its stdout is its summary. Cancelling sends SIGINT (the CLI stops at its next step and
exits 130, keeping what it stored) and, after `GRACE_S`, kills it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from coverlens.errors import INTERRUPTED_EXIT, CoverlensError
from coverlens.jobs import lower_priority

PROGRESS_ENV = "COVERLENS_PROGRESS"
PROGRESS_PREFIX = "coverlens-progress "
GRACE_S = 60.0  # how long a cancelled child may take to stop at its next step before it is killed
POLL_S = 0.25  # how often a quiet child is checked for a cancel request
NOTES_KEPT = 20

Progress = Callable[[float, str], None]


class ChildFailed(CoverlensError):
    """A command run in a child process exited with an error (its own message, its exit code)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def progress_line(fraction: float, message: str) -> str:
    """What a child prints on stderr to report progress."""
    return PROGRESS_PREFIX + json.dumps({"fraction": round(float(fraction), 4), "message": message})


def parse_progress(line: str) -> tuple[float, str] | None:
    """(fraction, message) of a progress line; None for any other line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        raw = json.loads(line[len(PROGRESS_PREFIX):])
        return float(raw["fraction"]), str(raw["message"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class ChildResult:
    output: str  # the command's stdout
    notes: list[str] = field(default_factory=list)  # its other stderr lines (warnings, notes)

    def summary(self) -> str:
        """Its notes, then its output: what a person reads of a finished job."""
        return "\n".join([*(note.removeprefix("coverlens: ") for note in self.notes), self.output]).strip()


def coverlens_command(args: Sequence[str]) -> list[str]:
    """The command line of `coverlens ARGS` run with this interpreter."""
    return [sys.executable, "-m", "coverlens", *args]


def run_child(command: Sequence[str], progress: Progress, *, grace_s: float = GRACE_S) -> ChildResult:
    """Run `command`, passing its progress lines to `progress`; its stdout is the result's summary.

    `progress` may raise (the job runner's cancel): the child is then interrupted, and killed if it
    has not stopped within `grace_s`; the exception goes on. A child that fails raises `ChildFailed`
    with its last error line.
    """
    env = dict(os.environ, **{PROGRESS_ENV: "lines", "PYTHONUNBUFFERED": "1"})
    child = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env=env, text=True, encoding="utf-8", errors="replace")
    # Niced right after it started: the threads it starts later inherit it (on Linux the value is
    # per thread, and at this point the new interpreter has only its main thread).
    lower_priority(child.pid)
    lines: queue.Queue[str | None] = queue.Queue()
    stdout: list[str] = []
    readers = [threading.Thread(target=_pump, args=(child.stderr, lines.put, lambda: lines.put(None)), daemon=True),
               threading.Thread(target=_pump, args=(child.stdout, stdout.append, lambda: None), daemon=True)]
    for reader in readers:
        reader.start()
    notes: list[str] = []
    fraction, message = 0.0, ""
    try:
        stderr_open = True
        while stderr_open or child.poll() is None:
            try:
                line = lines.get(timeout=POLL_S)
            except queue.Empty:
                progress(fraction, message)  # no news: lets a cancel request through
                continue
            if line is None:
                stderr_open = False
                continue
            parsed = parse_progress(line)
            if parsed is not None:
                fraction, message = parsed
                progress(fraction, message)
            elif line.strip():
                notes = [*notes, line.rstrip()][-NOTES_KEPT:]
    except BaseException:
        _stop(child, grace_s)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    code = child.wait()
    if code != 0:
        raise ChildFailed(_error_of(notes, code), code)
    return ChildResult("".join(stdout).strip(), notes)


def _pump(stream: Iterable[str], put: Callable[[str], None], ended: Callable[[], None]) -> None:
    """Copy a child's stream line by line, then say it ended."""
    for line in stream:
        put(line)
    ended()


def _stop(child: subprocess.Popen[str], grace_s: float) -> None:
    """Interrupt the child (it keeps what it stored and exits); kill it if it does not stop in time."""
    if child.poll() is not None:
        return
    try:
        child.send_signal(signal.SIGINT)
    except (OSError, ValueError):  # gone meanwhile, or a platform without SIGINT for children (Windows)
        child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _error_of(notes: list[str], code: int) -> str:
    """The child's own error line without the program's prefix, else its last lines."""
    for line in reversed(notes):
        for prefix in ("coverlens: error: ", "coverlens: internal error: "):
            if line.startswith(prefix):
                return line[len(prefix):]
    if code == INTERRUPTED_EXIT:
        return "interrupted"
    tail = "; ".join(notes[-3:])
    return f"the job's process exited with code {code}" + (f": {tail}" if tail else "")
