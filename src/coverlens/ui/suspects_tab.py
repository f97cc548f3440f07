"""Suspects tab: covers whose neighbours vote for another genre, and near-duplicate pairs.

Finding them reads every stored vector and writes reports/suspects-<embedder>.*, so it runs as a
background job ("Find suspects", shown in the Jobs panel, cancellable while queued or between its
steps); the tab shows the last report found: the one the job just made (kept in the server, so a
reloaded page shows it too), else the one written on disk by an earlier run or `coverlens suspects`.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from coverlens.errors import CoverlensError
from coverlens.ui import formatting as fmt
from coverlens.ui.common import Shell, cleared, guarded, kept, missing_markdown
from coverlens.ui.concurrency import JOBS
from coverlens.ui.search_tab import embedder_radio


def last_report(service: Any, found: dict[str, Any], embedder: str) -> Any:
    """The report a job of this app made, else the one on disk (None: never run)."""
    if embedder in found:
        return found[embedder]
    from coverlens.search.jobs import read_suspects

    workspace = getattr(service, "workspace", None)
    try:
        return read_suspects(workspace.reports_dir, embedder) if workspace is not None else None
    except (CoverlensError, OSError, TypeError, ValueError):  # an unreadable old report: as if none
        return None


def build(shell: Shell) -> None:
    """Lay out the tab inside the current Tabs and wire its events."""
    service = shell.service
    found: dict[str, Any] = {}  # embedder -> the last report a job made (read by every page)
    with gr.Tab("Suspects", id="suspects") as tab:
        with gr.Row():
            embedder = embedder_radio(service, scale=2)
            run_button = gr.Button("Find suspects", variant="primary", scale=1, elem_id="suspects-run")
        message = gr.Markdown(elem_id="suspects-message")
        gr.Markdown("### Label suspects: covers whose nearest neighbours vote for another genre")
        table = gr.Dataframe(label="Label suspects (select a row to see its evidence)", headers=fmt.SUSPECT_COLUMNS,
                             interactive=False,
                             elem_id="suspects-table")
        choice = gr.Dropdown(label="Suspect", choices=[], value=None, elem_id="suspects-choice")
        evidence = gr.Gallery(label="The suspect, then its neighbours (genre · similarity)", columns=6,
                              height="auto", fit_columns=False, elem_id="suspects-evidence")
        gr.Markdown("### Near-duplicate pairs: different files, nearly the same picture")
        pairs = gr.Dataframe(label="Near-duplicate pairs", headers=fmt.PAIR_COLUMNS, interactive=False,
                             elem_id="suspects-pairs")
        pair_gallery = gr.Gallery(label="Pairs side by side (genre · similarity)", columns=4, height="auto",
                                  fit_columns=False)
        report_state = gr.State(None)

    outputs = [message, table, choice, evidence, pairs, pair_gallery, report_state]

    @guarded(cleared(len(outputs) - 1))
    def suspects(embedder_name: str) -> tuple[Any, ...]:
        report = last_report(service, found, embedder_name)
        if report is None:
            return (missing_markdown(f"No suspects yet for the {embedder_name} embedding: press Find suspects "
                                     "once the library is indexed.", service), *(None,) * (len(outputs) - 1))
        note = (f"{len(report.label_suspects)} label suspects, {len(report.near_duplicates)} near-duplicate pairs "
                f"({embedder_name} embedding).")
        note += "".join(f"\n\n⚠ {w}" for w in getattr(report, "warnings", []) or [])
        first = 0 if report.label_suspects else None
        return (note, fmt.suspects_table(report), gr.update(choices=fmt.suspect_choices(report), value=first),
                _evidence(report, first), fmt.near_duplicates_table(report),
                fmt.near_duplicates_gallery(report, service.cover_image), report)

    @guarded(kept(len(outputs) - 1))
    def run(embedder_name: str) -> tuple[Any, ...]:
        def work(progress: Any) -> Any:
            progress(0.0, f"suspects ({embedder_name}): reading the stored vectors, voting, pairing")
            report = service.suspects(embedder_name)
            progress(1.0, f"suspects ({embedder_name}): written")  # a cancel asked meanwhile ends here
            found[embedder_name] = report
            return report

        def describe(report: Any) -> str:
            return (f"{len(report.label_suspects)} label suspects, {len(report.near_duplicates)} near-duplicate "
                    f"pairs ({embedder_name}).")

        message_text = shell.submit("suspects", f"suspects ({embedder_name})", work, describe)
        return (message_text, *(gr.skip(),) * (len(outputs) - 1))

    @guarded(cleared(1))
    def suspect(index: int | None, report: Any) -> tuple[Any, ...]:
        return ("", _evidence(report, index))

    def _evidence(report: Any, index: int | None) -> Any:
        if report is None or index is None or not 0 <= int(index) < len(report.label_suspects):
            return None
        return fmt.suspect_gallery(report.label_suspects[int(index)], service.cover_image)

    def select_row(evt: gr.SelectData) -> Any:
        row = evt.row_value or []
        return row[0] if row else gr.skip()

    tab.select(suspects, embedder, outputs, api_name="suspects")
    embedder.change(suspects, embedder, outputs, api_visibility="private")
    run_button.click(run, embedder, outputs, api_name="run_suspects", **JOBS)
    shell.after_jobs(suspects, embedder, outputs)
    choice.input(suspect, [choice, report_state], [message, evidence], api_name="suspect")
    table.select(select_row, None, choice, api_visibility="private").then(
        suspect, [choice, report_state], [message, evidence], api_visibility="private")
