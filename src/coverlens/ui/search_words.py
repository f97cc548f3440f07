"""The Search tab's words: the words read on the query cover (with the text model's and fused genres),
filled in a second update after the search itself, and a text-search box over the library's words.

Laid out by `coverlens.ui.search_tab` (one call for each panel), wired here; it only calls the
service's `text_prediction` and `find`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.defaults import SEARCH_K
from coverlens.errors import CoverlensError
from coverlens.ui.common import cleared, guarded
from coverlens.ui.formatting import error_markdown


def _scores(found: Any) -> str:
    return ", ".join(f"{s.genre} {s.score:.2f}" for s in found)


def words_markdown(evidence: Any) -> str:
    """The words read on a cover, then the text model's and the fused genres (the head stays first above)."""
    if evidence is None:
        return ""
    origin = {"stored": "read by the text stage", "read": "read now"}.get(evidence.origin, "")
    words = " / ".join(f"`{w}`" for w in evidence.words) if evidence.words else "_none legible_"
    lines = [f"**Words on the cover** ({origin}): {words}" if origin else f"**Words on the cover**: {words}"]
    if evidence.text:
        lines.append(f"Text model: {_scores(evidence.text)}")
    if evidence.fused:
        lines.append(f"Fused (head + text): **{evidence.fused[0].genre}** ({_scores(evidence.fused)})")
    lines += [f"- {note}" for note in evidence.notes]
    return "\n\n".join(lines)


def words_panel() -> gr.Markdown:
    return gr.Markdown(elem_id="search-words")


def wire_words(service: Any, panel: gr.Markdown, upload: Any, pick: Any, button: Any,
               file_of: Any) -> None:
    """The second update: after a search, the words on the same cover (OCR for an upload takes a second)."""

    def words(upload_path: str | None, picked: str | None) -> str:
        try:
            if upload_path:
                return words_markdown(service.text_prediction(Path(upload_path)))
            if picked:
                return words_markdown(service.text_prediction(file_of(service, picked)))
        except CoverlensError as exc:
            return error_markdown(str(exc))
        return ""

    button.click(words, [upload, pick], panel, api_name="words")
    upload.upload(words, [upload, pick], panel, api_visibility="private")
    pick.select(lambda: None, None, upload, api_visibility="private").then(
        words, [upload, pick], panel, api_visibility="private")


def find_panel(service: Any) -> None:
    """A text box: covers by the words printed on them, the matched text under each cover."""
    with gr.Row():
        query = gr.Textbox(label="Find covers by their words", placeholder="e.g. greatest hits", scale=4,
                           elem_id="find-query")
        button = gr.Button("Find", elem_id="find-button", scale=1)
    message = gr.Markdown(elem_id="find-message")
    found = gr.Gallery(label="Covers carrying the words (genre · matched text)", columns=5, height="auto",
                       fit_columns=False, elem_id="find-covers")

    @guarded(cleared(1))
    def find(text: str) -> tuple[Any, ...]:
        if not text or not text.strip():
            return "Type some words to look for.", None
        matches = service.find(text, k=SEARCH_K * 2)
        if not matches:
            return f"No cover carries _{text}_ (only covers whose text `coverlens index` has read).", None
        items = [(str(m.file), f"{m.genre or '-'} · {m.snippet}") for m in matches if m.file is not None]
        return f"{len(matches)} covers, best match first.", items

    button.click(find, query, [message, found], api_name="find")
    query.submit(find, query, [message, found], api_visibility="private")
