"""Suspects tab: covers whose neighbours vote for another genre, and near-duplicate pairs."""

from __future__ import annotations

from typing import Any

import gradio as gr

from coverlens.ui import formatting as fmt
from coverlens.ui.common import Shell, cleared, guarded
from coverlens.ui.search_tab import embedder_radio


def build(shell: Shell) -> None:
    """Lay out the tab inside the current Tabs and wire its events."""
    service = shell.service
    with gr.Tab("Suspects", id="suspects") as tab:
        embedder = embedder_radio(service)
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
        report = service.suspects(embedder_name)
        note = (f"{len(report.label_suspects)} label suspects, {len(report.near_duplicates)} near-duplicate pairs "
                f"({embedder_name} embedding).")
        first = 0 if report.label_suspects else None
        return (note, fmt.suspects_table(report), gr.update(choices=fmt.suspect_choices(report), value=first),
                _evidence(report, first), fmt.near_duplicates_table(report),
                fmt.near_duplicates_gallery(report, service.cover_image), report)

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
    choice.input(suspect, [choice, report_state], [message, evidence], api_name="suspect")
    table.select(select_row, None, choice, api_visibility="private").then(
        suspect, [choice, report_state], [message, evidence], api_visibility="private")
