"""Evaluation tab: the side-by-side table on the held-out split, confusion matrices, per-genre F1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.ui import formatting as fmt
from coverlens.ui.common import Shell, guarded, kept, missing_markdown
from coverlens.ui.concurrency import JOBS


def build(shell: Shell) -> None:
    """Lay out the tab inside the current Tabs and wire its events."""
    service = shell.service
    with gr.Tab("Evaluation", id="evaluation") as tab:
        run_button = gr.Button("Run evaluation", variant="primary", elem_id="evaluation-run")
        message = gr.Markdown(elem_id="evaluation-message")
        table = gr.Markdown(elem_id="evaluation-table")
        with gr.Row():
            f1 = gr.Image(label="Per-genre F1", type="filepath", interactive=False, elem_id="evaluation-f1")
            confusion = gr.Gallery(label="Confusion matrices", columns=2, height="auto", fit_columns=False,
                                   elem_id="evaluation-confusion")
        with gr.Accordion("evaluation.json", open=False):
            raw = gr.JSON()

    outputs = [message, table, f1, confusion, run_button, raw]

    def view(note: str = "") -> tuple[Any, ...]:
        evaluation = service.evaluation()
        if evaluation is None:
            return (missing_markdown("No evaluation yet: press Run evaluation once a model is trained "
                                     "(the methods that cannot run yet are reported as skipped).", service),
                    "", None, None, gr.update(visible=True), None)
        files = service.evaluation_files()
        f1_file = files.get("per_genre_f1")
        return (note, fmt.evaluation_markdown(evaluation, files.get("table_md")),
                str(f1_file) if f1_file and Path(f1_file).is_file() else None,
                fmt.image_gallery(files.get("confusion", [])), gr.update(visible=False), evaluation)

    @guarded(kept(len(outputs) - 1))
    def evaluation() -> tuple[Any, ...]:
        return view()

    @guarded(kept(len(outputs) - 1))
    def run() -> tuple[Any, ...]:
        def work(progress: Any) -> str:
            service.run_evaluation(progress=progress)
            return "Evaluation finished."

        return (shell.submit("evaluate", "evaluation on the held-out split", work), *(gr.skip(),) * (len(outputs) - 1))

    tab.select(evaluation, None, outputs, api_name="evaluation")
    run_button.click(run, None, outputs, api_name="run_evaluation", **JOBS)
    shell.after_jobs(evaluation, None, outputs)
