"""Search tab: a cover in (uploaded or picked from the library), prediction, vote, neighbours out.

Fast first, words after: the search event answers with the nearest covers, the head and the vote
(the galleries show thumbnails); a chained second event brings what is slower. Today that is the
words read on the cover, when the service offers `read_words(source)` (the OCR stage): its answer
(`.text`, and optionally `.scores` of a text model and `.fused` genres) fills the "Words" row;
without it the second update leaves the row hidden and costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.defaults import SEARCH_K
from coverlens.errors import CoverlensError, ImageError
from coverlens.ui import formatting as fmt
from coverlens.ui import search_words
from coverlens.ui.common import Shell, cleared, guarded
from coverlens.ui.concurrency import SEARCH_WORKERS
from coverlens.ui.thumb_urls import root_url

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
            full = gr.Image(label="Selected cover (full size): click a cover in the galleries", type="filepath",
                            interactive=False, height=320, elem_id="search-full")
        with gr.Column(scale=2):
            message = gr.Markdown(elem_id="search-message")
            with gr.Row():
                head = gr.Label(label="Classifier (fastai head)", num_top_classes=5, elem_id="search-head")
                vote_scores = gr.Label(label="KNN vote over the neighbours", num_top_classes=5)
            vote = gr.Markdown(elem_id="search-vote")
            with gr.Row(visible=False) as words_row:
                words = gr.Markdown(elem_id="search-words")
                text_scores = gr.Label(label="Text model (words read)", num_top_classes=5)
                fused = gr.Label(label="Fused genre", num_top_classes=5)
            cluster = gr.Markdown(elem_id="search-cluster")
            evidence = gr.Gallery(label="Evidence: the neighbours that voted (genre · similarity)", columns=5,
                                  height="auto", fit_columns=False, elem_id="search-evidence")
            neighbours = gr.Gallery(label="Nearest covers (genre · similarity)", columns=5, height="auto",
                                    fit_columns=False,
                                    elem_id="search-neighbours")
            search_words.find_panel(service)
        # ((upload, picked), evidence (path, source)s, neighbour (path, source)s): for clicks and the words
        shown = gr.State(None)

    outputs = [message, query, head, vote, vote_scores, evidence, neighbours, cluster]
    blank = (None,) * (len(outputs) - 1)

    @guarded(cleared(len(outputs)))
    def search(upload_path: str | None, picked: str | None, k_value: float, embedder_name: str,
               request: gr.Request) -> tuple[Any, ...]:
        if upload_path:
            source = Path(upload_path)
        elif picked:
            source = library_file(service, picked)
        else:
            return ("Upload a cover or pick one from the library.", *blank, None)
        result = service.search(source, k=int(k_value), embedder=embedder_name, text=False)  # words: after
        evidence_hits = result.vote.evidence if result.vote else []
        root = root_url(request)  # thumbnails by URL: no per-file work in gradio's postprocessing
        image_of = lambda hit: shell.image_of(hit, root)  # noqa: E731
        return (
            fmt.search_notes(result), query_image(shell, source, result.query_id, bool(picked and not upload_path)),
            fmt.scores_label(result.head), fmt.vote_markdown(result.vote),
            fmt.scores_label(result.vote.scores) if result.vote else None,
            fmt.hit_gallery_of(evidence_hits, image_of), fmt.hit_gallery_of(result.neighbours, image_of),
            fmt.cluster_markdown(result.cluster),
            ((upload_path, None) if upload_path else (None, picked), [(h.path, h.source) for h in evidence_hits],
             [(h.path, h.source) for h in result.neighbours]),
        )

    def read_words(found: tuple[Any, ...] | None) -> tuple[Any, ...]:
        """The second update: the words on the cover (the OCR hook), never holding back the first."""
        reader = getattr(service, "read_words", None)
        if reader is None or not found:
            return (gr.update(visible=False), None, None, None)
        try:
            upload_path, picked = found[0]
            read = reader(Path(upload_path) if upload_path else library_file(service, picked))
        except CoverlensError as exc:
            return (gr.update(visible=True), fmt.error_markdown(str(exc)), None, None)
        if read is None:
            return (gr.update(visible=False), None, None, None)
        return (gr.update(visible=True), fmt.words_markdown(read), fmt.scores_label(getattr(read, "scores", [])),
                fmt.scores_label(getattr(read, "fused", [])))

    def open_full(which: int, found: Any, evt: gr.SelectData) -> Any:
        """A click on a gallery cover shows the full cover, not its thumbnail."""
        paths = found[which] if found else []
        if evt.index is None or not 0 <= int(evt.index) < len(paths):
            return gr.skip()
        try:
            return fmt.shown(service.cover_image, *paths[int(evt.index)])
        except CoverlensError:
            return gr.skip()

    def more(k_value: float) -> float:
        return min(MAX_K, int(k_value) + PAGE)

    inputs = [upload, pick, k, embedder]
    # Searches run side by side (up to SEARCH_WORKERS, see ui.app); the words follow as their own event.
    fast = {"concurrency_id": "search", "concurrency_limit": SEARCH_WORKERS}
    after = {"concurrency_id": "words", "concurrency_limit": SEARCH_WORKERS, "show_progress": "hidden"}
    words_out = [words_row, words, text_scores, fused]

    def words_after(event: Any) -> None:
        event.then(read_words, shown, words_out, api_visibility="private", **after)

    def search_after(event: Any) -> None:
        words_after(event.then(search, inputs, [*outputs, shown], api_visibility="private", **fast))

    words_after(search_button.click(search, inputs, [*outputs, shown], api_name="search", **fast))
    # One source at a time: an upload clears the pick and a pick clears the upload.
    search_after(upload.upload(lambda: None, None, pick, api_visibility="private", queue=False))
    search_after(pick.select(lambda: None, None, upload, api_visibility="private", queue=False))
    search_after(more_button.click(more, k, k, api_name="more", queue=False))

    def open_evidence(found: Any, evt: gr.SelectData) -> Any:
        return open_full(1, found, evt)

    def open_neighbour(found: Any, evt: gr.SelectData) -> Any:
        return open_full(2, found, evt)

    evidence.select(open_evidence, shown, full, api_visibility="private", **fast)
    neighbours.select(open_neighbour, shown, full, api_visibility="private", **fast)
    shell.on_change(lambda: library_choices(service), pick)


def query_image(shell: Shell, source: Any, query_id: str | None, picked: bool) -> Any:
    """What the query shows: an upload as it came (already in gradio's cache); a library cover by its
    thumbnail (the full file would be hashed and copied into gradio's cache on every search)."""
    if picked and query_id and shell.thumbs is not None:
        thumb = shell.thumbs.get(query_id, lambda: source)
        if thumb is not None:
            return str(thumb)
    return _query_shown(source)


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
