"""Library tab: the catalog overview, and the Catalog and Index actions (background jobs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.child_process import coverlens_command, run_child
from coverlens.errors import LibraryError
from coverlens.ui import formatting as fmt
from coverlens.ui.common import Shell, cleared, guarded, kept, missing_markdown
from coverlens.ui.concurrency import JOBS


def build(shell: Shell) -> None:
    """Lay out the tab inside the current Tabs and wire its events."""
    service = shell.service
    with gr.Tab("Library", id="library") as tab:
        with gr.Row():
            folder = gr.Textbox(label="Library folder (genre sub-folders, a music collection or a Calibre library)",
                                scale=3,
                                placeholder="/path/to/covers", elem_id="library-folder")
            catalog_button = gr.Button("Catalog", variant="primary", scale=1, elem_id="library-catalog")
            index_button = gr.Button("Index", scale=1, elem_id="library-index")
        action = gr.Markdown(elem_id="library-action")
        message = gr.Markdown(elem_id="library-message")
        summary = gr.Markdown(elem_id="library-summary")
        chart = gr.BarPlot(x="genre", y="covers", color="split", title="Distinct covers per genre",
                           x_label_angle=-45, y_lim=[0, None], elem_id="library-chart")
        genres = gr.Dataframe(label="Covers per genre", headers=fmt.GENRE_COLUMNS, interactive=False)
        with gr.Accordion("Problems", open=True):
            problems = gr.Dataframe(label="Unreadable files", headers=fmt.PROBLEM_COLUMNS, interactive=False,
                                    elem_id="library-problems")
            duplicates = gr.Dataframe(label="Byte-identical copies", headers=fmt.GROUP_COLUMNS, interactive=False)
            conflicts = gr.Dataframe(label="Label conflicts (one image filed under several genres)",
                                     headers=fmt.GROUP_COLUMNS, interactive=False)
            placeholders = gr.Dataframe(label="Placeholders (one image repeated many times)",
                                        headers=fmt.GROUP_COLUMNS, interactive=False)

    outputs = [message, summary, chart, genres, problems, duplicates, conflicts, placeholders]

    @guarded(cleared(len(outputs) - 1))
    def overview() -> tuple[Any, ...]:
        if not service.status().catalogued:
            return (missing_markdown("No library catalogued yet.", service), *(None,) * (len(outputs) - 1))
        view = service.overview()
        return ("", fmt.overview_markdown(view), fmt.genre_split_frame(view), fmt.genre_table(view),
                fmt.problems_table(view), fmt.copy_groups_table(view.duplicate_groups),
                fmt.copy_groups_table(view.label_conflicts), fmt.copy_groups_table(view.placeholders))

    @guarded(kept(0))
    def catalog(path: str) -> tuple[str]:
        if not (path or "").strip():
            raise LibraryError("type the library folder to catalog first")
        folder = Path(path.strip()).expanduser()

        def work(progress: Callable[[float, str], None]) -> str:
            options = service.command_options(store=False)
            if options is not None:  # a child process, as the index job (see `index_job`)
                text = run_child(coverlens_command(["catalog", str(folder), *options]), progress).summary()
            else:
                text = service.catalog(folder, progress=progress).describe()
                text = text[0].upper() + text[1:] + "."
            root = service.library_root()
            if root is not None:
                shell.allow(root)  # its covers may be served from now on
            return text

        return (shell.submit("catalog", f"catalog {folder}", work),)

    @guarded(kept(0))
    def index() -> tuple[str]:
        return (shell.submit("index", "index (every embedder that can be had) + thumbnails",
                             lambda progress: index_job(shell, progress)),)

    tab.select(overview, None, outputs, api_name="overview")
    catalog_button.click(catalog, folder, action, api_name="catalog", **JOBS)
    index_button.click(index, None, action, api_name="index", **JOBS)
    shell.after_jobs(overview, None, outputs)


def index_job(shell: Shell, progress: Callable[[float, str], None]) -> str:
    """Index what is new, then make the thumbnails the galleries will show (so no search makes them).

    In a child process (`coverlens index --thumbnails`) when the service can be opened there (the
    Catalog job too): the searches then keep this process's interpreter lock to themselves (the
    job's share of the CPU is niced), and the app follows the store's generation as it follows any
    other writer. In this process otherwise (a service built with replaced collaborators)."""
    from coverlens.thumbnails import make_library_thumbnails

    service = shell.service
    options = service.command_options()
    if options is not None:
        thumbs = [] if shell.thumbs is None else ["--thumbnails", str(shell.thumbs.folder)]

        def follow() -> None:  # what the run publishes is loaded here, not in someone's search
            shell.jobs.promptly(lambda: _follow(service))  # searches wait on it: not at the job's priority

        def relayed(fraction: float, message: str) -> None:
            progress(fraction, message)
            follow()

        summary = run_child(coverlens_command(["index", *options, *thumbs]), relayed).summary()
        progress(1.0, "loading the new store")
        follow()
        return summary
    summary = service.index(progress=progress).summary()
    if shell.thumbs is not None:
        made = make_library_thumbnails(service, shell.thumbs, progress)
        summary += f"\n{made:,} thumbnails made ({shell.thumbs.folder})."
    return summary


def _follow(service: Any) -> None:
    """Load what another process wrote into the store, if anything. A store problem is left to the
    searches to report (they say what it is): it is not the job's failure."""
    from coverlens.errors import CoverlensError

    try:
        service.load_store()
    except CoverlensError:
        pass
