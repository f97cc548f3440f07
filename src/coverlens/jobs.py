"""Background jobs: one worker thread runs the long jobs (catalog, index, clusters, suspects,
evaluation) one at a time, in the order they were asked for, while reads go on beside it.

Why one worker: the jobs write the workspace and the store (one writer per store directory) and
each already uses the machine's cores; two at once would only fight. The worker thread runs the
job; a job may itself run as a `coverlens` child process (`coverlens.child_process`: the app's index
job does, so its decoding and CNN never hold the searches' interpreter lock), the worker then only
relays its progress and its cancel. The lighter jobs run in the thread and reuse the service's kept
models.

A job's state lives here, in the server, keyed by its id: a browser that reloads the page lists
the jobs again. Cancelling is cooperative: the job's progress callback raises `Cancelled` at its
next call (the catalog and the indexer are resumable, so a cancelled run loses nothing stored);
a queued job is dropped before it starts. A job that fails keeps its error message.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from coverlens.errors import CoverlensError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
LOG_LINES = 200  # the tail of a job's log that is kept (progress messages are logged when they change)
KEEP_FINISHED = 50  # finished jobs kept for the list; older ones are forgotten
# The worker thread runs at a lower CPU priority than the searches (Linux schedules threads, and a
# thread's nice value is its own; the threads a job starts inherit it): when both want a core, a
# search gets it and the job takes the rest. 0 turns it off (COVERLENS_JOB_NICE).
JOB_NICE = 10

T = TypeVar("T")
Progress = Callable[[float, str], None]
Work = Callable[[Progress], Any]  # runs the job; returns its result (summarised by `describe`)


class Cancelled(CoverlensError):
    """Raised inside a job's progress callback once the job was asked to stop."""


@dataclass
class Job:
    """A snapshot of one job (the runner hands out copies: readers never see it change under them)."""

    id: str
    kind: str  # "catalog", "index", "clusters", ...
    label: str  # what the person asked for, e.g. "index (all embedders)"
    state: str = QUEUED
    fraction: float = 0.0
    message: str = ""
    log: list[str] = field(default_factory=list)
    summary: str = ""  # what a finished job did
    error: str = ""  # why a failed job failed
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def seconds(self, now: float | None = None) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or now or time.time()) - self.started


class JobRunner:
    """One background worker thread and the record of every job it was given."""

    def __init__(self, name: str = "coverlens-jobs") -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._work: dict[str, tuple[Work, Callable[[Any], str]]] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[Job], None]] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        # Started here, by the caller's thread (not the niced worker): it keeps the caller's priority.
        self._prompt: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._prompt_thread = threading.Thread(target=self._run_prompt, name=f"{name}-prompt", daemon=True)
        self._prompt_thread.start()

    # -- asking ------------------------------------------------------------------------------------
    def submit(self, kind: str, label: str, work: Work, describe: Callable[[Any], str] = str) -> Job:
        """Queue `work(progress)`; `describe(result)` becomes the finished job's summary."""
        job = Job(f"{kind}-{next(self._ids)}", kind, label)
        with self._lock:
            self._jobs[job.id] = job
            self._work[job.id] = (work, describe)
            self._log(job, f"queued: {label}")
            self._forget_old()
        self._queue.put(job.id)
        return replace(job, log=list(job.log))

    def cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop: a queued one is dropped now, a running one at its next progress report."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return self._copy(job)
            job.cancel_requested = True
            if job.state == QUEUED:
                self._finish(job, CANCELLED, "cancelled before it started")
            else:
                self._log(job, "cancel requested: stopping at the next step")
            return self._copy(job)

    def promptly(self, step: Callable[[], T]) -> T:
        """Run `step` at normal priority (in the runner's second thread) and wait for it: for a job's
        step that searches wait on (reopening the store), which must not crawl at the job's low one."""
        future: Future[T] = Future()
        self._prompt.put((step, future))
        return future.result()

    def add_listener(self, listener: Callable[[Job], None]) -> None:
        """Called (in the worker thread) with each job that finishes, e.g. to drop cached views."""
        self._listeners.append(listener)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._copy(self._jobs.get(job_id))

    def jobs(self) -> list[Job]:
        """Every kept job, newest first."""
        with self._lock:
            return [self._copy(j) for j in sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)]

    def active(self) -> list[Job]:
        return [j for j in self.jobs() if j.active]

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job has finished (for tests and scripts); None if it is unknown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None or not job.active:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout} s")
            time.sleep(0.02)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the running job (queued ones are cancelled)."""
        for job in self.active():
            self.cancel(job.id)
        self._queue.put(None)
        self._thread.join(timeout)
        self._prompt.put(None)
        self._prompt_thread.join(timeout)

    # -- the worker ----------------------------------------------------------------------------------
    def _run(self) -> None:
        lower_priority(threading.get_native_id())
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                work, describe = self._work.pop(job_id, (None, str))
                if job is None or work is None or job.state != QUEUED:
                    continue
                job.state, job.started = RUNNING, time.time()
                self._log(job, "started")
            try:
                result = work(self._progress(job))
                summary = describe(result) if result is not None else ""
            except Cancelled:
                self._end(job, CANCELLED, "stopped; what was stored so far is kept")
            except CoverlensError as exc:  # the engine's own, readable errors
                self._end(job, FAILED, str(exc))
            except Exception as exc:  # a bug: say what it was, keep the trace in the log
                self._end(job, FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=5))
            else:
                self._end(job, DONE, summary)

    def _run_prompt(self) -> None:
        while (item := self._prompt.get()) is not None:
            step, future = item
            try:
                future.set_result(step())
            except BaseException as exc:  # handed to the job that asked
                future.set_exception(exc)

    def _progress(self, job: Job) -> Progress:
        def report(fraction: float, message: str) -> None:
            with self._lock:
                if job.cancel_requested:
                    raise Cancelled(f"{job.label}: cancelled")
                job.fraction = max(0.0, min(1.0, float(fraction)))
                if message and topic_of(message) != topic_of(job.message):
                    self._log(job, message)  # one log line per step, not per cover
                job.message = message

        return report

    def _end(self, job: Job, state: str, text: str, trace: str = "") -> None:
        with self._lock:
            if trace:
                self._log(job, trace.rstrip())
            self._finish(job, state, text)
        for listener in self._listeners:
            try:
                listener(self._copy(job))
            except Exception:  # a listener must never stop the worker
                traceback.print_exc()

    def _finish(self, job: Job, state: str, text: str) -> None:
        job.state, job.finished = state, time.time()
        if state == DONE:
            job.fraction, job.summary = 1.0, text
        elif state == FAILED:
            job.error = text
        else:
            job.summary = text
        self._log(job, f"{state}: {text}" if text else state)

    def _log(self, job: Job, line: str) -> None:
        job.log.append(f"{time.strftime('%H:%M:%S')} {line}")
        del job.log[:-LOG_LINES]

    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if not j.active), key=lambda j: j.created)
        for job in finished[:-KEEP_FINISHED]:
            del self._jobs[job.id]

    @staticmethod
    def _copy(job: Job | None) -> Job | None:
        return None if job is None else replace(job, log=list(job.log))


def lower_priority(tid: int) -> None:
    """Nice a thread (Linux: a thread id; a process id names its main thread) to JOB_NICE, or
    $COVERLENS_JOB_NICE; where that cannot be done, nothing changes."""
    import os

    nice = int(os.environ.get("COVERLENS_JOB_NICE", JOB_NICE))
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except OSError:
        pass


def topic_of(message: str) -> str:
    """'index finetuned: 40/300' -> 'index finetuned': progress within one step logs once."""
    return message.split(":", 1)[0]
