"""One `/search` of the running app through gradio_client, as the app shows it: the note, and the
nearest covers by id (the galleries show thumbnails named by the cover's id), genre and similarity."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUEST_TIMEOUT_S = 120  # one answer


@dataclass
class Answer:
    query: Path
    neighbours: list[tuple[str, str, float]]  # (genre, cover id, similarity) as the app shows them
    message: str
    finished: float  # monotonic time the answer arrived
    seconds: float

    @property
    def ids(self) -> list[str]:
        return [cover_id for _, cover_id, _ in self.neighbours]


def ask(client: Any, cover: Path, k: int, embedder: str = "finetuned") -> Answer:
    """Upload `cover` to `/search` for its `k` nearest covers with `embedder`."""
    from gradio_client import handle_file

    started = time.monotonic()
    job = client.submit(handle_file(str(cover)), None, k, embedder, api_name="/search")
    message, *_, neighbours, _cluster = job.result(timeout=REQUEST_TIMEOUT_S)
    finished = time.monotonic()
    shown = []
    for item in neighbours or []:
        genre, similarity = item["caption"].rsplit(" · ", 1)
        shown.append((genre, Path(item["image"]["path"]).stem, float(similarity)))  # <thumbs>/<id>.webp
    return Answer(cover, shown, message or "", finished, finished - started)
