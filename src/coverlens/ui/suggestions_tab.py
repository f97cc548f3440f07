"""Suggestions tab: genre suggestions for unlabelled covers and for covers the engine doubts.

Shows the last suggestions written (reports/suggestions.json) when the tab opens and whenever a
job ends; "Find suggestions" runs `coverlens suggest` through the service as a background job (its
progress per batch of covers and Cancel in the Jobs panel; searches keep answering). Each
suggestion comes with its cover (the file, or the picture embedded in an audio file), the evidence
(every genre signal's top genre, the KNN vote) and the CSV to download. Nothing in the library is changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from coverlens.errors import CoverlensError
from coverlens.ui import formatting as fmt
from coverlens.ui.common import Shell, cleared, guarded, kept, missing_markdown
from coverlens.ui.concurrency import JOBS
from coverlens.ui.search_tab import embedder_radio

SHOWN_COVERS = 24  # covers in the gallery (the table and the CSV have all)
TABLE_COLUMNS = ["kind", "cover", "filed as", "suggested", "confidence", "evidence"]


def evidence_text(row: dict[str, Any], signals: Sequence[str]) -> str:
    """Every signal's top genre and the vote, e.g. 'head jazz 81% · vote jazz 70% (jazz 0.93; ...)'."""
    parts = [f"{name} {row[f'{name}_genre']} {float(row[f'{name}_confidence']):.0%}"
             for name in signals if row.get(f"{name}_genre")]
    if row.get("vote_genre"):
        parts.append(f"vote {row['vote_genre']} {float(row['vote_share']):.0%}"
                     + (f" ({row['neighbours']})" if row.get("neighbours") else ""))
    return " · ".join(parts) or "no evidence"


def suggestions_table(data: dict[str, Any]) -> pd.DataFrame:
    rows = [{"kind": r["kind"], "cover": r["cover"], "filed as": r["genre"] or "-",
             "suggested": r["suggested_genre"] or "-", "confidence": round(float(r["confidence"]), 3),
             "evidence": evidence_text(r, data.get("signals", []))} for r in data.get("suggestions", [])]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def suggestions_markdown(data: dict[str, Any]) -> str:
    rows = data.get("suggestions", [])
    unlabelled = sum(1 for r in rows if r["kind"] == "unlabelled")
    lines = [f"**{unlabelled:,}** suggestions for the **{data.get('unlabelled', 0):,}** unlabelled covers · "
             f"**{len(rows) - unlabelled:,}** labelled covers the engine confidently doubts "
             f"(signals: {', '.join([*data.get('signals', []), 'vote'])}). The library is not changed."]
    lines += [f"- {note}" for note in data.get("notes", [])]
    return "\n".join(lines)


def build(shell: Shell) -> None:
    """Lay out the tab inside the current Tabs and wire its events."""
    service = shell.service
    with gr.Tab("Suggestions", id="suggestions") as tab:
        with gr.Row():
            embedder = embedder_radio(service, scale=2)
            run_button = gr.Button("Find suggestions", variant="primary", scale=1, elem_id="suggestions-run")
        message = gr.Markdown(elem_id="suggestions-message")
        table = gr.Dataframe(label="Suggestions (the CSV has every column)", headers=TABLE_COLUMNS,
                             interactive=False, wrap=True, elem_id="suggestions-table")
        gallery = gr.Gallery(label="Covers (suggested genre · confidence)", columns=6, height="auto",
                             fit_columns=False, elem_id="suggestions-gallery")
        download = gr.File(label="suggestions.csv", interactive=False, elem_id="suggestions-csv")

    outputs = [message, table, gallery, download]

    def covers(data: dict[str, Any]) -> list[tuple[Any, str]]:
        items = []
        for row in data.get("suggestions", [])[:SHOWN_COVERS]:
            try:
                image = fmt.shown(service.cover_image, row["path"], row["source"])
            except CoverlensError:
                continue  # a cover gone since: the table still names it
            items.append((image, f"{row['suggested_genre'] or '?'} · {float(row['confidence']):.0%} · {row['cover']}"))
        return items

    def view(data: dict[str, Any] | None, csv_file: Any) -> tuple[Any, ...]:
        if data is None:
            return (missing_markdown("No suggestions yet: press Find suggestions.", service), None, None, None)
        return (suggestions_markdown(data), suggestions_table(data), covers(data),
                str(csv_file) if csv_file and Path(csv_file).is_file() else None)

    @guarded(cleared(len(outputs) - 1))
    def last() -> tuple[Any, ...]:
        return view(service.suggestions(), service.workspace.reports_dir / "suggestions.csv")

    @guarded(kept(len(outputs) - 1))
    def run(embedder_name: str) -> tuple[Any, ...]:
        def work(progress: Any) -> Any:  # progress per batch of covers; a cancel stops at the next batch
            progress(0.0, f"suggest ({embedder_name}): gathering the vote and the genre signals")
            return service.suggest(progress, embedder=embedder_name)

        def describe(report: Any) -> str:
            return report.summary() if hasattr(report, "summary") else "Suggestions written."

        message_text = shell.submit("suggest", f"suggestions ({embedder_name})", work, describe)
        return (message_text, *(gr.skip(),) * (len(outputs) - 1))

    tab.select(last, None, outputs, api_name="suggestions")
    run_button.click(run, embedder, outputs, api_name="suggest", **JOBS)
    shell.after_jobs(last, None, outputs)  # the suggestions a job just wrote, on every open page
