"""Background jobs and concurrent reads: the JobRunner alone, then the app with a slow fake service."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from coverlens.errors import StoreError
from coverlens.jobs import CANCELLED, DONE, FAILED, RUNNING, JobRunner
from coverlens.registry import Kept
from libraries import trained_library
from local_servers import launch_local
from ui_fakes import FakeService

gradio_client = pytest.importorskip("gradio_client")

SEARCH_S = 0.4  # how long the slow fake's search takes


# -- the runner alone -------------------------------------------------------------------------------

@pytest.fixture
def runner() -> Iterator[JobRunner]:
    jobs = JobRunner()
    yield jobs
    jobs.close()


def test_jobs_run_one_at_a_time_in_the_order_asked(runner: JobRunner) -> None:
    inside, most, order = [0], [0], []
    lock = threading.Lock()

    def work(name: str) -> Any:
        def run(progress: Any) -> str:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            progress(0.5, f"{name}: half")
            time.sleep(0.05)
            order.append(name)
            with lock:
                inside[0] -= 1
            return f"{name} done"
        return run

    ids = [runner.submit("test", name, work(name)).id for name in ("a", "b", "c")]
    jobs = [runner.wait(i, timeout=10) for i in ids]
    assert order == ["a", "b", "c"] and most[0] == 1
    assert [j.state for j in jobs] == [DONE] * 3 and jobs[1].summary == "b done" and jobs[1].fraction == 1.0
    assert any("b: half" in line for line in jobs[1].log)


def test_cancel_stops_a_running_job_at_its_next_progress_and_drops_a_queued_one(runner: JobRunner) -> None:
    started, steps = threading.Event(), []

    def long(progress: Any) -> str:
        for i in range(200):
            started.set()
            progress(i / 200, f"step {i}")
            steps.append(i)
            time.sleep(0.01)
        return "finished"

    running = runner.submit("test", "long", long)
    queued = runner.submit("test", "queued", lambda progress: "never")
    assert started.wait(5)
    assert runner.cancel(queued.id).state == CANCELLED
    runner.cancel(running.id)
    job = runner.wait(running.id, timeout=10)
    assert job.state == CANCELLED and len(steps) < 200 and "stored so far is kept" in job.summary
    assert runner.get(queued.id).state == CANCELLED and runner.get(queued.id).started is None


def test_a_failed_job_keeps_its_error_and_the_worker_goes_on(runner: JobRunner) -> None:
    def fail(progress: Any) -> None:
        raise StoreError("no finetuned vectors; run `coverlens index` first")

    def bug(progress: Any) -> None:
        raise ZeroDivisionError("division by zero")

    failed, broken = runner.submit("test", "fails", fail), runner.submit("test", "bug", bug)
    after = runner.submit("test", "after", lambda progress: "fine")
    assert runner.wait(failed.id, 10).error == "no finetuned vectors; run `coverlens index` first"
    job = runner.wait(broken.id, 10)
    assert job.state == FAILED and "ZeroDivisionError" in job.error and any("Traceback" in x for x in job.log)
    assert runner.wait(after.id, 10).state == DONE


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="threads cannot be niced here")
def test_jobs_run_at_a_lower_cpu_priority_than_the_searches(runner: JobRunner) -> None:
    """The worker thread is niced (a search's thread is not): when both want a core, the search gets it."""
    from coverlens.jobs import JOB_NICE

    def nice_of_this_thread(progress: Any) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # a search's thread: the process's nice
    job = runner.wait(runner.submit("test", "nice", nice_of_this_thread, describe=str).id, timeout=10)
    assert job.state == DONE and int(job.summary) >= max(JOB_NICE, here)


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="threads cannot be niced here")
def test_a_jobs_prompt_step_runs_at_the_searches_priority(runner: JobRunner) -> None:
    """A step searches wait on (reopening the store) runs at normal priority, not the job's, and its
    error reaches the job that asked."""
    from coverlens.jobs import JOB_NICE

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def failing() -> None:
        raise StoreError("the store went away")

    def work(progress: Any) -> str:
        with pytest.raises(StoreError, match="went away"):
            runner.promptly(failing)
        return f"{nice()} {runner.promptly(nice)}"

    here = nice()
    job = runner.wait(runner.submit("test", "prompt", work).id, timeout=10)
    assert job.state == DONE, job.error
    job_nice, prompt_nice = map(int, job.summary.split())
    assert job_nice >= max(JOB_NICE, here) and prompt_nice == here


def test_kept_builds_once_when_two_first_uses_race(tmp_path: Path) -> None:
    """Two searches arriving together at a cold service build the embedder once, not twice."""
    from coverlens.registry import BuildContext
    from coverlens.workspace import Workspace
    from fakes import FakeEmbedder, fake_registry

    def slow_build(ctx: Any) -> FakeEmbedder:
        time.sleep(0.2)
        return FakeEmbedder("finetuned")

    registry = fake_registry({"finetuned": slow_build})
    kept = Kept(registry, BuildContext(Workspace(tmp_path), lambda: None, {}, lambda name: None))
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: kept.embedder("finetuned"), range(4)))
    assert kept.builds["finetuned"] == 1 and all(b is built[0] for b in built)


# -- the app ----------------------------------------------------------------------------------------

class SlowService(FakeService):
    """The fake, with a search that takes SEARCH_S and an index run that waits for `release`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.inside = self.most = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.index_started = threading.Event()

    def search(self, source: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(SEARCH_S)
            return super().search(source, **kwargs)
        finally:
            with self.lock:
                self.inside -= 1

    def index(self, progress: Any = None, **kwargs: Any) -> Any:
        for step in range(1000):
            self.index_started.set()
            if self.release.is_set():
                break
            if progress:
                progress(step / 1000, f"index finetuned: {step}/1000")
            time.sleep(0.02)
        return super().index(progress, **kwargs)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Any, SlowService, Any]]:
    service = SlowService(tmp_path)
    demo = launch_local(service)
    client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
    yield demo, service, client
    service.release.set()
    demo.close()


def search(client: Any, service: FakeService, i: int = 0) -> tuple[Any, ...]:
    cover = service.library / service.covers[i % len(service.covers)][0]
    return client.predict(gradio_client.handle_file(str(cover)), None, 5, "finetuned", api_name="/search")


def job_id(message: str) -> str:
    found = re.search(r"Job \*\*([\w-]+)\*\*", message)
    assert found, message
    return found.group(1)


def test_searches_run_side_by_side(app: tuple[Any, SlowService, Any]) -> None:
    demo, service, client = app
    search(client, service)  # warm
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: search(client, service, i), range(4)))
    took = time.monotonic() - started
    assert all(a[2]["label"] for a in answers)  # every search got its head
    assert service.most >= 2  # two searches were inside the service at the same moment
    assert took < 4 * SEARCH_S  # not one after the other


def test_a_search_answers_while_a_job_runs_and_the_job_can_be_cancelled(app: tuple[Any, SlowService, Any]) -> None:
    demo, service, client = app
    job = job_id(client.predict(api_name="/index"))
    assert service.index_started.wait(10)
    started = time.monotonic()
    answer = search(client, service)
    assert time.monotonic() - started < 10 * SEARCH_S and answer[2]["label"]
    record = client.predict(job, api_name="/job")
    assert record["state"] == RUNNING and record["message"].startswith("index finetuned")
    # a new page (a new client session) lists the same job: its state lives in the server
    fresh = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
    status, table, *_ = fresh.predict(api_name="/jobs")
    assert job in [row[0] for row in table["data"]] and "running" in status and "index finetuned" in status
    fresh.predict(job, api_name="/cancel_job")
    runner = demo.coverlens_shell.jobs
    assert runner.wait(job, timeout=10).state == CANCELLED
    status, *_ = fresh.predict(api_name="/jobs")
    assert "cancelled" in status


def test_jobs_queue_behind_each_other(app: tuple[Any, SlowService, Any], tmp_path: Path) -> None:
    demo, service, client = app
    first = job_id(client.predict(api_name="/index"))
    assert service.index_started.wait(10)
    message = client.predict(str(tmp_path), api_name="/catalog")
    assert "queued behind" in message
    second = job_id(message)
    runner = demo.coverlens_shell.jobs
    assert runner.get(second).state == "queued"
    service.release.set()
    assert runner.wait(first, 10).state == DONE and runner.wait(second, 10).state == DONE


class SlowViewsService(FakeService):
    """The fake, with suggestions that report progress until `release` and suspects that take a while."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.suggest_started = threading.Event()

    def suggest(self, progress: Any = None, **kwargs: Any) -> Any:
        for step in range(1000):
            self.suggest_started.set()
            if self.release.is_set():
                break
            if progress:
                progress(step / 1000, f"suggest: {step}/1000")
            time.sleep(0.02)
        return super().suggest(progress, **kwargs)

    def suspects(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(SEARCH_S)
        return super().suspects(*args, **kwargs)


def test_suggestions_and_suspects_run_as_jobs_with_progress_cancel_and_a_reload(tmp_path: Path) -> None:
    service = SlowViewsService(tmp_path)
    demo = launch_local(service)
    try:
        client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        runner = demo.coverlens_shell.jobs
        first = job_id(client.predict("finetuned", api_name="/suggest")[0])
        assert service.suggest_started.wait(10)
        answer = search(client, service)  # a search answers while the job runs
        assert answer[2]["label"] and runner.get(first).state == RUNNING
        deadline = time.monotonic() + 10
        while not client.predict(first, api_name="/job")["message"].startswith("suggest: "):
            assert time.monotonic() < deadline  # the progress per batch reaches the job's record
            time.sleep(0.05)
        # a reloaded page (a new client session) lists the running job, with its progress, and cancels it
        fresh = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        status, table, *_ = fresh.predict(api_name="/jobs")
        assert first in [row[0] for row in table["data"]] and "suggestions (finetuned)" in status
        fresh.predict(first, api_name="/cancel_job")
        assert runner.wait(first, timeout=10).state == CANCELLED
        assert "No suggestions yet" in fresh.predict(api_name="/suggestions")[0]  # nothing written
        # run again to the end: the tab shows what the job wrote, on any page
        service.release.set()
        second = job_id(fresh.predict("finetuned", api_name="/suggest")[0])
        assert runner.wait(second, timeout=10).state == DONE
        assert "**1** suggestions for the **1** unlabelled" in client.predict(api_name="/suggestions")[0]
        # suspects: queued behind nothing, done in the background, shown on a page opened afterwards
        third = job_id(client.predict("finetuned", api_name="/run_suspects")[0])
        assert runner.wait(third, timeout=10).state == DONE and "2 label suspects" in runner.get(third).summary
        later = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        assert "2 label suspects" in later.predict("finetuned", api_name="/suspects")[0]
    finally:
        service.release.set()
        demo.close()


def test_suspects_written_by_an_earlier_run_are_read_back(tmp_path: Path) -> None:
    """The tab shows the report on disk (an earlier app, or `coverlens suspects`) without running again."""
    from coverlens.search.jobs import read_suspects
    from coverlens.search.suspects_report import write_suspects_report

    service = FakeService(tmp_path)
    made = service.suspects("finetuned")
    write_suspects_report(service.workspace.reports_dir, "finetuned", made.label_suspects, made.near_duplicates,
                          {"embedder": "finetuned"})
    back = read_suspects(service.workspace.reports_dir, "finetuned")
    assert back.label_suspects == made.label_suspects and back.near_duplicates == made.near_duplicates
    assert read_suspects(service.workspace.reports_dir, "clip") is None
    demo = launch_local(service)
    try:
        client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        message, table, *_ = client.predict("finetuned", api_name="/suspects")
        assert "2 label suspects, 1 near-duplicate pairs" in message and len(table["data"]) == 2
    finally:
        demo.close()


class WordsService(FakeService):
    """The fake with the OCR hook: reading the words takes a while, the search does not."""

    WORDS_S = 2.0

    def read_words(self, source: Any) -> Any:
        time.sleep(self.WORDS_S)
        return type("Words", (), {"text": "COMPLETE WORKS", "scores": [], "fused": []})()


def test_the_first_update_never_waits_for_the_words(tmp_path: Path) -> None:
    service = WordsService(tmp_path)
    demo = launch_local(service)
    try:
        client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        search(client, service)  # warm
        started = time.monotonic()
        answer = search(client, service)
        assert time.monotonic() - started < WordsService.WORDS_S  # the words come in a later event
        assert answer[2]["label"]
    finally:
        demo.close()


def test_real_service_answers_searches_while_its_index_job_writes(trained_workspace: Any, tmp_path: Path) -> None:
    """The app's index job (a `coverlens index` child process) writes the embedded store the app's
    searches read; every search answers, and the store ends equal to the catalog."""
    from coverlens.catalog import distinct_covers, load_catalog, run_catalog
    from coverlens.sample_library import make_sample_library
    from coverlens.service import CoverlensService

    workspace = trained_library(tmp_path / "own", trained_workspace, genres=3, per_genre=12, seed=5)
    service = CoverlensService(workspace)
    service.index(embedder="finetuned")
    library = service.library_root()
    first = sorted(library.glob("*/*.jpg"))
    for path in make_sample_library(tmp_path / "extra", genres=3, per_genre=40, size=48, seed=9):
        path.rename(library / path.parent.name / f"new-{path.name}")
    run_catalog(workspace)
    demo = launch_local(service)
    try:
        client = gradio_client.Client(demo.local_url, verbose=False, download_files=False)
        runner = demo.coverlens_shell.jobs
        job = job_id(client.predict(api_name="/index"))
        answers, states = [], set()
        while runner.get(job).active and len(answers) < 40:
            states.add(runner.get(job).state)
            cover = first[len(answers) % len(first)]
            answers.append(client.predict(gradio_client.handle_file(str(cover)), None, 5, "finetuned",
                                          api_name="/search"))
        done = runner.wait(job, timeout=120)
        assert done.state == DONE, done.error
        assert RUNNING in states  # some searches were answered while the job was writing
        for message, _query, head, _vote, _scores, _evidence, neighbours, _cluster in answers:
            assert "error" not in (message or "").lower() and head["label"] and len(neighbours) == 5
        stored = set(service.collection("finetuned").ids())
        assert stored == set(distinct_covers(load_catalog(workspace))["id"])
        thumbs = demo.coverlens_shell.thumbs
        assert "thumbnails made" in done.summary and len(list(thumbs.folder.glob("*.webp"))) == len(stored)
        # the galleries show the thumbnails, named by the covers' ids
        neighbours = client.predict(gradio_client.handle_file(str(first[0])), None, 5, "finetuned",
                                    api_name="/search")[6]
        assert all(Path(item["image"]["path"]).suffix == ".webp" for item in neighbours)
    finally:
        demo.close()
        service.close()


def test_a_cancelled_index_run_loses_nothing_and_the_next_run_finishes(copied_workspace: Any) -> None:
    """Cancel the real indexer mid-run: the writer lock is released, what was written stays, and
    the next run adds the rest (the indexer is resumable)."""
    from coverlens.catalog import distinct_covers, load_catalog
    from coverlens.service import CoverlensService

    service = CoverlensService(copied_workspace)
    runner = JobRunner()
    seen = threading.Event()

    def index(progress: Any) -> Any:
        def watched(fraction: float, message: str) -> None:
            if message.startswith("index"):  # past following the library: writing vectors
                seen.set()
                time.sleep(0.05)  # slow enough to be cancelled mid-run
            progress(fraction, message)
        return service.index(progress=watched, embedder="finetuned", batch_size=2)

    try:
        job = runner.submit("index", "index", index)
        assert seen.wait(60)
        runner.cancel(job.id)
        assert runner.wait(job.id, 60).state == CANCELLED
        partial = service.collection("finetuned").count()
        catalog = set(distinct_covers(load_catalog(copied_workspace))["id"])
        assert partial < len(catalog)
        again = runner.submit("index", "index again", lambda progress: service.index(progress, embedder="finetuned"))
        assert runner.wait(again.id, 120).state == DONE  # the writer lock was released by the cancelled run
        assert set(service.collection("finetuned").ids()) == catalog
    finally:
        runner.close()
        service.close()
