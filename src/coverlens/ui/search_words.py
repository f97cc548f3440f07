"""The Search tab's text search: a box over the words read on the library's covers, the matched text
under each cover. Laid out by `coverlens.ui.search_tab` (one call), wired here; it calls the
service's `find` only. (The words read on the query cover come in the tab's own second update,
from `service.read_words`.)"""

from __future__ import annotations

from typing import Any

import gradio as gr

from coverlens.defaults import SEARCH_K
from coverlens.ui import formatting as fmt
from coverlens.ui.common import cleared, guarded


def find_panel(service: Any) -> None:
    """A text box: covers by the words printed on them, the matched text under each cover."""
    with gr.Row():
        query = gr.Textbox(label="Find covers by their words", placeholder="e.g. greatest hits", scale=4,
                           elem_id="find-query")
        button = gr.Button("Find", elem_id="find-button", scale=1)
    message = gr.Markdown(elem_id="find-message")
    found = gr.Gallery(label="Covers carrying the words, printed or in their metadata (genre · matched text)",
                       columns=5, height="auto",
                       fit_columns=False, elem_id="find-covers")

    @guarded(cleared(1))
    def find(text: str) -> tuple[Any, ...]:
        if not text or not text.strip():
            return "Type some words to look for.", None
        matches = service.find(text, k=SEARCH_K * 2)
        if not matches:
            return f"No cover carries _{text}_ (only covers whose text `coverlens index` has read).", None
        items = [(fmt.shown(service.cover_image, m.path, m.source), f"{m.genre or '-'} · {m.shown()}")
                 for m in matches if m.file is not None]  # an embedded picture is shown decoded
        return f"{len(matches)} covers, best match first.", items

    button.click(find, query, [message, found], api_name="find")
    query.submit(find, query, [message, found], api_visibility="private")
