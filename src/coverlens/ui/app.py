"""The Gradio Blocks, built from a service object, and the one way to launch them.

The app holds no logic: every tab calls the service and formats what comes back. It serves the
library and the workspace and nothing wider, binds 127.0.0.1 unless told otherwise, and caps
uploads at `coverlens.images.MAX_UPLOAD_BYTES`.

Reads run side by side (no lock around the service: its kept models and store client are safe to
share, see `CoverlensService`); catalog, index (with thumbnails), clusters and evaluation run in
one background worker (`coverlens.jobs.JobRunner`), shown in the Jobs panel above the tabs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.errors import CoverlensError
from coverlens.images import MAX_UPLOAD_BYTES
from coverlens.jobs import JobRunner
from coverlens.thumbnails import Thumbnails, workspace_thumbnails
from coverlens.ui import (
    clusters_tab,
    evaluation_tab,
    jobs_panel,
    library_tab,
    search_tab,
    suggestions_tab,
    suspects_tab,
    thumb_urls,
)
from coverlens.ui import formatting as fmt
from coverlens.ui.common import Shell
from coverlens.ui.concurrency import MAX_THREADS, QUEUE_SIZE, VIEW_WORKERS

TITLE = "coverlens"
CSS = """
#status-header { font-size: 0.9em; }
#search-message:empty, #clusters-message:empty { display: none; }
"""


def build_app(service: Any, *, jobs: JobRunner | None = None, thumbs: Thumbnails | None = None) -> gr.Blocks:
    """The app's Blocks for `service` (a `coverlens.service.CoverlensService` or a test double).

    `jobs`: the background worker (one is started when not given); `thumbs`: where the galleries'
    thumbnails are made (default `<workspace>/thumbs`).
    """
    runner = jobs or JobRunner()
    thumbs = thumbs or workspace_thumbnails(service.workspace.root)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        shell = Shell(service, allow=lambda path: allow_path(demo, path), jobs=runner, thumbs=thumbs)
        demo.coverlens_shell = shell  # for tests and benchmarks: the runner and thumbnails in use
        gr.Markdown(f"# {TITLE}: cover genres, nearest covers, clusters")
        header = gr.Markdown(elem_id="status-header")

        def status() -> str:
            try:
                return fmt.status_markdown(service.status())
            except CoverlensError as exc:
                return fmt.error_markdown(str(exc))

        shell.on_change(status, header)
        jobs_panel.build(shell, demo)
        with gr.Tabs():
            search_tab.build(shell)
            library_tab.build(shell)
            clusters_tab.build(shell)
            evaluation_tab.build(shell)
            suspects_tab.build(shell)
            suggestions_tab.build(shell)
        quick = {"concurrency_id": "views", "show_progress": "hidden"}
        demo.load(status, None, header, api_name="engine_status", **quick)
        for fn, outputs in shell.hooks:  # the displays that depend on the engine's state
            if fn is not status:
                demo.load(fn, None, outputs, api_visibility="private", **quick)
            shell.after_jobs(fn, None, outputs)
    demo.queue(default_concurrency_limit=VIEW_WORKERS, max_size=QUEUE_SIZE)
    return demo


def served_paths(service: Any) -> list[str]:
    """The library root and the workspace root: the only folders whose files the app may serve."""
    roots = [service.library_root(), service.workspace.root]
    return [str(Path(p).resolve()) for p in roots if p is not None]


def allow_path(demo: gr.Blocks, path: Path) -> None:
    """Serve a library catalogued after launch (gradio reads `allowed_paths` on every request)."""
    resolved = str(Path(path).resolve())
    if resolved not in demo.allowed_paths:
        demo.allowed_paths.append(resolved)


def launch_app(service: Any, host: str = "127.0.0.1", port: int | None = None, *,
               thumbs: Thumbnails | None = None, **kwargs: Any) -> gr.Blocks:
    """Build and launch the app; `kwargs` go to `Blocks.launch` (e.g. prevent_thread_lock, quiet)."""
    demo = build_app(service, thumbs=thumbs)
    folder = demo.coverlens_shell.thumbs.folder
    folder.mkdir(parents=True, exist_ok=True)
    # Thumbnails never change (named by content id): served straight from their folder, not hashed
    # and copied into gradio's cache on every search as other files are.
    gr.set_static_paths([str(folder.resolve())])
    paths = served_paths(service)
    if not any(Path(folder).resolve().is_relative_to(p) for p in paths):
        paths.append(str(folder.resolve()))  # a thumbnail folder outside the workspace (benchmarks)
    options: dict[str, Any] = {
        "server_name": host, "server_port": port, "allowed_paths": paths,
        "max_file_size": MAX_UPLOAD_BYTES, "theme": gr.themes.Soft(), "css": CSS, "show_error": False,
        "max_threads": MAX_THREADS}
    options.update(kwargs)
    demo.launch(**options)
    thumb_urls.mount(demo.app, demo.coverlens_shell.thumbs)  # the galleries' thumbnails, by URL
    return demo
