"""Search tab: a cover in (uploaded or picked from the library), prediction, vote, neighbours out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.defaults import SEARCH_K
from coverlens.errors import CoverlensError, ImageError
from coverlens.ui import formatting as fmt
from coverlens.ui import search_words
from coverlens.ui.common import Shell, cleared, guarded

PAGE = SEARCH_K  # covers added by each press of "More covers"
MAX_K = 100


def build(shell: Shell) -> None:
    """Lay out the tab inside the current Tabs and wire its events."""
    service = shell.service
    with gr.Tab("Search", id="search"), gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Upload a cover (JPEG, PNG, WebP, ...)", file_count="single", type="filepath",
                             elem_id="search-upload")
            pick = gr.Dropdown(label="... or pick one from the library", choices=[], value=None,
                               filterable=True, allow_custom_value=True, elem_id="search-pick")
            with gr.Row():
                k = gr.Slider(1, MAX_K, value=PAGE, step=1, label="nearest covers (k)")
                embedder = embedder_radio(service)
            with gr.Row():
                search_button = gr.Button("Search", variant="primary", elem_id="search-button")
                more_button = gr.Button("More covers", elem_id="search-more")
            query = gr.Image(label="Query cover", type="filepath", interactive=False, height=220)
        with gr.Column(scale=2):
            message = gr.Markdown(elem_id="search-message")
            with gr.Row():
                head = gr.Label(label="Classifier (fastai head)", num_top_classes=5, elem_id="search-head")
                vote_scores = gr.Label(label="KNN vote over the neighbours", num_top_classes=5)
            vote = gr.Markdown(elem_id="search-vote")
            cluster = gr.Markdown(elem_id="search-cluster")
            words = search_words.words_panel()
            evidence = gr.Gallery(label="Evidence: the neighbours that voted (genre · similarity)", columns=5,
                                  height="auto", fit_columns=False, elem_id="search-evidence")
            neighbours = gr.Gallery(label="Nearest covers (genre · similarity)", columns=5, height="auto",
                                    fit_columns=False,
                                    elem_id="search-neighbours")
            search_words.find_panel(service)

    outputs = [message, query, head, vote, vote_scores, evidence, neighbours, cluster]

    @guarded(cleared(len(outputs) - 1))
    def search(upload_path: str | None, picked: str | None, k_value: float, embedder_name: str) -> tuple[Any, ...]:
        if upload_path:
            source = Path(upload_path)
        elif picked:
            source = library_file(service, picked)
        else:
            return ("Upload a cover or pick one from the library.", *(None,) * (len(outputs) - 1))
        result = service.search(source, k=int(k_value), embedder=embedder_name, text=False)  # words: after
        return (
            fmt.search_notes(result), _query_shown(source), fmt.scores_label(result.head),
            fmt.vote_markdown(result.vote),
            fmt.scores_label(result.vote.scores) if result.vote else None,
            fmt.hit_gallery(result.vote.evidence if result.vote else [], service.cover_image),
            fmt.hit_gallery(result.neighbours, service.cover_image), fmt.cluster_markdown(result.cluster),
        )

    def more(k_value: float) -> float:
        return min(MAX_K, int(k_value) + PAGE)

    inputs = [upload, pick, k, embedder]
    search_button.click(search, inputs, outputs, api_name="search")
    # One source at a time: an upload clears the pick and a pick clears the upload.
    upload.upload(lambda: None, None, pick, api_visibility="private").then(
        search, inputs, outputs, api_visibility="private")
    pick.select(lambda: None, None, upload, api_visibility="private").then(
        search, inputs, outputs, api_visibility="private")
    more_button.click(more, k, k, api_name="more").then(search, inputs, outputs, api_visibility="private")
    shell.on_change(lambda: library_choices(service), pick)
    search_words.wire_words(service, words, upload, pick, search_button, library_file)


def embedder_radio(service: Any, **kwargs: Any) -> gr.Radio:
    """The embedding choice: the service's registered embedders, the default first."""
    choices = service.embedder_choices()
    return gr.Radio(choices, value=choices[0], label="embedding", **kwargs)


def library_file(service: Any, relpath: str) -> Any:
    """A library cover by its relative path (its file, or the bytes of a picture embedded in it);
    a path that leaves the library is refused."""
    root, path = service.library_root(), service.cover_path(relpath)
    if root is None or not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise ImageError(relpath, "not a cover of the catalogued library")
    return service.library_cover(relpath)


def _query_shown(source: Any) -> Any:
    """The query cover for gr.Image: a file's path, or an embedded picture's bytes decoded."""
    if isinstance(source, bytes):
        from coverlens.images import decode_image

        return decode_image(source)[0]
    return str(source)


def library_choices(service: Any) -> dict[str, Any]:
    """Choices for the library picker; empty (not an error) before anything is catalogued."""
    try:
        covers = service.library_covers()
    except CoverlensError:
        covers = []
    return gr.update(choices=[(f"{genre} · {path}", path) for path, genre in covers])
