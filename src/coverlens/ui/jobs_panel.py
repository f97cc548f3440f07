"""The Jobs panel above the tabs: what runs in the background, its progress and log, Cancel.

Every open page polls it once a second (a `gr.Timer`; the answer is read from memory, no service
call). Job state lives in the server's `JobRunner`, so a reloaded page lists the same jobs. When a
job finishes, `Shell.jobs_done` changes and the views that depend on what jobs write refresh.
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import pandas as pd

from coverlens.jobs import FAILED, RUNNING, Job
from coverlens.ui.common import Shell

POLL_SECONDS = 1.0
COLUMNS = ["job", "what", "state", "progress", "seconds", "result"]


def job_line(job: Job) -> str:
    """One job in a sentence, e.g. 'index (job index-2) running 42%: index finetuned: 120/300'."""
    head = f"**{job.label}** (job `{job.id}`) {job.state}"
    if job.state == RUNNING:
        head += f" {job.fraction:.0%} · {job.seconds():.0f} s"
        return f"{head}: {job.message}" if job.message else head
    if job.state == FAILED:
        return f"{head}: ⚠ {job.error}"
    return f"{head}: {job.summary}" if job.summary else head


def status_markdown(jobs: list[Job]) -> str:
    """Running and queued jobs first; else the last finished one; else a plain 'no job'."""
    active = [j for j in jobs if j.active]
    if active:
        return "\n".join(f"- {job_line(j)}" for j in reversed(active))
    if jobs:
        return f"No job running. Last: {job_line(jobs[0])}"
    return "No job running."


def jobs_table(jobs: list[Job]) -> pd.DataFrame:
    now = time.time()
    rows = [{"job": j.id, "what": j.label, "state": j.state, "progress": f"{j.fraction:.0%}",
             "seconds": round(j.seconds(now), 1), "result": j.error or j.summary or j.message} for j in jobs]
    return pd.DataFrame(rows, columns=COLUMNS)


def job_record(job: Job | None) -> dict[str, Any] | None:
    """A job as JSON, for API clients (the benchmark, scripts)."""
    if job is None:
        return None
    return {"id": job.id, "kind": job.kind, "label": job.label, "state": job.state, "fraction": job.fraction,
            "message": job.message, "summary": job.summary, "error": job.error, "log": job.log[-20:]}


def build(shell: Shell, demo: gr.Blocks) -> None:
    """Lay out the panel where it is called and wire its events (page load, timer, cancel)."""
    runner = shell.jobs
    with gr.Accordion("Jobs", open=True, elem_id="jobs"):
        status = gr.Markdown("No job running.", elem_id="jobs-status")
        with gr.Accordion("All jobs and their logs", open=False):
            table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="jobs-table")
            with gr.Row():
                choice = gr.Dropdown(label="Job", choices=[], value=None, scale=3, elem_id="jobs-choice")
                cancel = gr.Button("Cancel job", variant="stop", scale=1, elem_id="jobs-cancel")
            log = gr.Textbox(label="Log", lines=8, max_lines=16, interactive=False, elem_id="jobs-log")
        record = gr.JSON(visible=False)
    finished = gr.Number(value=0, visible=False)  # how many jobs have finished: a change refreshes views
    shell.jobs_done = finished
    timer = gr.Timer(POLL_SECONDS)

    def panel(chosen: str | None = None) -> tuple[Any, ...]:
        jobs = runner.jobs()
        ids = [j.id for j in jobs]
        current = chosen if chosen in ids else (next((j.id for j in jobs if j.active), ids[0] if ids else None))
        shown = runner.get(current) if current else None
        done = sum(not j.active for j in jobs)
        return (status_markdown(jobs), jobs_table(jobs), gr.update(choices=ids, value=current),
                "\n".join(shown.log) if shown else "", done)

    def tick(chosen: str | None, seen: float | None) -> tuple[Any, ...]:
        *rest, done = panel(chosen)
        return (*rest, done if done != seen else gr.skip())

    def stop(chosen: str | None) -> tuple[Any, ...]:
        # Nothing chosen yet (a click right after a page load, before the first poll filled the
        # list): the button means the job that is running now.
        chosen = chosen or next((j.id for j in runner.jobs() if j.active), None)
        if chosen:
            runner.cancel(chosen)
        return panel(chosen)[:4]

    def job(job_id: str) -> dict[str, Any] | None:
        return job_record(runner.get(job_id))

    outputs = [status, table, choice, log]
    # The panel reads memory only: no limit needed, and it must never wait behind a search.
    quick = {"concurrency_id": "jobs-panel", "concurrency_limit": None, "show_progress": "hidden"}
    demo.load(panel, choice, [*outputs, finished], api_name="jobs", **quick)  # a reloaded page lists the jobs
    timer.tick(tick, [choice, finished], [*outputs, finished], api_visibility="private", **quick)
    choice.input(lambda c: panel(c)[3], choice, log, api_visibility="private", **quick)
    cancel.click(stop, choice, outputs, api_name="cancel_job", **quick)
    # an endpoint for scripts: the job as JSON (the panel itself shows the same)
    job_id = gr.Textbox(visible=False)
    job_id.submit(job, job_id, record, api_name="job", **quick)
