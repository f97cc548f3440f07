"""Jobs run as child processes: progress read from their stderr, their error kept, cancel stops them."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from coverlens.child_process import (
    PROGRESS_ENV,
    ChildFailed,
    parse_progress,
    progress_line,
    run_child,
)
from coverlens.cli.common import Bars
from coverlens.jobs import CANCELLED, DONE, FAILED, Cancelled, JobRunner
from libraries import trained_library

REPORTS = """
import sys, time
from coverlens.child_process import progress_line
for i in range(1, 4):
    print(progress_line(i / 3, f"step: {i}/3"), file=sys.stderr, flush=True)
print("coverlens: library: 3 covers", file=sys.stderr)
print("did 3 things")
"""

FAILS = """
import sys
print("starting", file=sys.stderr)
print("coverlens: error: library folder /x is missing; re-point it", file=sys.stderr)
sys.exit(3)
"""

LONG = """
import os, sys, time
from pathlib import Path
from coverlens.child_process import progress_line
Path(sys.argv[1]).write_text(str(os.getpid()))
i = 0
try:
    while True:
        i += 1
        print(progress_line(0.01, f"work: {i}"), file=sys.stderr, flush=True)
        time.sleep(0.05)
except KeyboardInterrupt:
    print("coverlens: interrupted; re-run the same command to resume", file=sys.stderr)
    sys.exit(130)
"""

STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", file=sys.stderr, flush=True)
time.sleep(600)
"""


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_progress_lines_round_trip_and_other_lines_are_not_progress() -> None:
    assert parse_progress(progress_line(0.5, "index: 5/10")) == (0.5, "index: 5/10")
    assert parse_progress("coverlens: warning: the store is incomplete") is None
    assert parse_progress("coverlens-progress {not json") is None


def test_a_child_reports_progress_and_its_summary() -> None:
    seen: list[tuple[float, str]] = []
    result = run_child(python(REPORTS), lambda f, m: seen.append((f, m)))
    reported = [s for s in seen if s[1]]
    assert [m for _, m in reported][:3] == ["step: 1/3", "step: 2/3", "step: 3/3"]
    assert reported[2][0] == pytest.approx(1.0)
    assert result.summary() == "library: 3 covers\ndid 3 things"


def test_a_failing_child_raises_its_own_error_and_exit_code() -> None:
    with pytest.raises(ChildFailed) as failed:
        run_child(python(FAILS), lambda f, m: None)
    assert str(failed.value) == "library folder /x is missing; re-point it"
    assert failed.value.exit_code == 3


def test_cancelling_interrupts_the_child_and_the_job_ends_cancelled(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    runner = JobRunner()
    try:
        job = runner.submit("index", "long", lambda progress: run_child(python(LONG, str(pid_file)), progress))
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and runner.get(job.id).message.startswith("work")):
            assert time.monotonic() < deadline, runner.get(job.id)
            time.sleep(0.05)
        runner.cancel(job.id)
        ended = runner.wait(job.id, 30)
        assert ended.state == CANCELLED
        assert not alive(int(pid_file.read_text()))  # interrupted, not left running
    finally:
        runner.close()


def test_a_child_that_ignores_the_interrupt_is_killed_after_the_grace_time() -> None:
    calls = 0

    def progress(fraction: float, message: str) -> None:
        nonlocal calls
        calls += 1
        if calls >= 2:
            raise Cancelled("cancelled")

    started = time.monotonic()
    with pytest.raises(Cancelled):
        run_child(python(STUBBORN), progress, grace_s=1.0)
    assert time.monotonic() - started < 20  # killed, not waited for its 600 s


def test_bars_print_progress_lines_for_a_parent_process(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "lines")
    bars = Bars()
    assert list(bars.track("index")(iter(range(5)), 5)) == list(range(5))
    lines = [parse_progress(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0] == (0.2, "index: 1/5") and lines[-1] == (1.0, "index: 5/5")  # first and last always
    assert all(line is not None for line in lines)


def test_the_apps_index_job_runs_in_a_child_process_and_can_be_cancelled(trained_workspace: Any,
                                                                          tmp_path: Path) -> None:
    """The real service's index job: in a child (no index in this process), cancelled at its first
    batch it keeps what it stored and releases the writer lock; the next job finishes the store and
    the thumbnails, and this process's service sees every cover."""
    from coverlens.catalog import distinct_covers, load_catalog
    from coverlens.service import CoverlensService
    from coverlens.store.freshness import generation_stamp
    from coverlens.thumbnails import Thumbnails
    from coverlens.ui.library_tab import index_job

    workspace = trained_library(tmp_path / "own", trained_workspace, genres=3, per_genre=150, seed=9)
    service = CoverlensService(workspace)  # 450 covers: 15 batches to write
    catalog = set(distinct_covers(load_catalog(workspace))["id"])
    thumbs = Thumbnails(tmp_path / "thumbs")
    runner = JobRunner()
    shell = SimpleNamespace(service=service, thumbs=thumbs, jobs=runner)
    writing = threading.Event()

    def index(progress: Any) -> Any:
        def watched(fraction: float, message: str) -> None:
            if message.startswith("index:"):  # the child is writing vectors: stop it now
                writing.set()
                runner.cancel(job.id)
            progress(fraction, message)  # raises Cancelled once the cancel was asked
        return index_job(shell, watched)  # type: ignore[arg-type]

    try:
        assert service.command_options() == ["--workspace", str(workspace.root)]
        job = runner.submit("index", "index", index)
        stopped = runner.wait(job.id, 180)
        assert writing.is_set() and stopped.state == CANCELLED, stopped
        partial = set(service.collection("finetuned").ids())
        assert partial < catalog  # stopped midway, what it stored kept
        again = runner.submit("index", "index again", lambda progress: index_job(shell, progress))  # type: ignore[arg-type]
        done = runner.wait(again.id, 300)
        assert done.state == DONE, done.error  # the writer lock was released by the stopped child
        shared = service.store()._shared
        assert shared is not None and shared.stamp == generation_stamp(workspace.store_dir)  # followed by the job,
        # before any search: no search pays the reload of what the child wrote
        assert set(service.collection("finetuned").ids()) == catalog  # this process follows the child's writes
        assert "thumbnails made" in done.summary and len(list(thumbs.folder.glob("*.webp"))) == len(catalog)
    finally:
        runner.close()
        service.close()


def test_a_failing_index_child_shows_the_engines_error(trained_workspace: Any, tmp_path: Path) -> None:
    import shutil

    from coverlens.service import CoverlensService
    from coverlens.ui.library_tab import index_job

    workspace = trained_library(tmp_path, trained_workspace, genres=2, per_genre=3)
    service = CoverlensService(workspace)
    library = service.library_root()
    shutil.rmtree(library)  # a disk not mounted
    runner = JobRunner()
    try:
        shell = SimpleNamespace(service=service, thumbs=None, jobs=runner)
        job = runner.submit("index", "index", lambda p: index_job(shell, p))  # type: ignore[arg-type]
        failed = runner.wait(job.id, 120)
        assert failed.state == FAILED
        assert str(library) in failed.error and "Traceback" not in failed.error, failed.error
    finally:
        runner.close()
        service.close()


def test_the_apps_catalog_job_runs_in_a_child_process(tmp_path: Path) -> None:
    """Catalog from the app with the real service: `coverlens catalog` in a child; the app then knows
    the library (its covers may be served) and the summary is the command's own."""
    import gradio_client

    from coverlens.catalog import distinct_covers, load_catalog
    from coverlens.sample_library import make_sample_library
    from coverlens.service import CoverlensService
    from coverlens.workspace import Workspace
    from local_servers import launch_local

    library = tmp_path / "library"
    make_sample_library(library, genres=2, per_genre=5, size=40, seed=2)
    service = CoverlensService(Workspace(tmp_path / "ws"))
    demo = launch_local(service)
    try:
        client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        message = client.predict(str(library), api_name="/catalog")
        job = message.split("**")[1]
        done = demo.coverlens_shell.jobs.wait(job, timeout=120)
        assert done.state == DONE, done.error
        assert f"catalog: {service.workspace.catalog_file}" in done.summary  # the CLI's own last line
        assert service.library_root() == library.resolve()
        assert len(distinct_covers(load_catalog(service.workspace))) == 10
        assert any(" catalog: " in line for line in done.log)  # its progress, relayed
    finally:
        demo.close()
        service.close()
