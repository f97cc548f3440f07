"""What every tab shares: turning CoverlensErrors into visible messages, progress, state notes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.errors import CoverlensError
from coverlens.jobs import JobRunner
from coverlens.thumbnails import Thumbnails
from coverlens.ui.formatting import error_markdown
from coverlens.ui.thumb_urls import thumb_url

Handler = Callable[..., Any]


def guarded(blank: Callable[[], tuple[Any, ...]]) -> Callable[[Handler], Handler]:
    """Wrap a handler whose first output is a message Markdown.

    A CoverlensError (bad upload, missing catalog, no model...) becomes that message and a toast;
    the other outputs take `blank()`. Anything else is a bug and is left to gradio, which shows
    "Error" without a traceback (show_error stays off).
    """

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)  # keeps the signature, so gradio still sees a gr.Progress parameter
        def handler(*args: Any, **kwargs: Any) -> Any:
            try:
                out = fn(*args, **kwargs)
            except CoverlensError as exc:
                gr.Warning(str(exc))
                out = (error_markdown(str(exc)), *blank())
            return out[0] if len(out) == 1 else out  # gradio wants a bare value for one output

        return handler

    return wrap


def cleared(n: int) -> Callable[[], tuple[Any, ...]]:
    """`blank` for handlers whose other outputs should be emptied after an error."""
    return lambda: (None,) * n


def kept(n: int) -> Callable[[], tuple[Any, ...]]:
    """`blank` for handlers whose other outputs should stay as they were after an error."""
    return lambda: tuple(gr.skip() for _ in range(n))


def missing_markdown(what: str, service: Any) -> str:
    """'No X yet' plus the engine's next step, for tabs whose data does not exist yet."""
    try:
        step = service.status().next_step
    except CoverlensError as exc:
        step = str(exc)
    return f"{what}\n\n**Next step:** {step}" if step else what


@dataclass
class Shell:
    """What the tabs share: the service, the background jobs, the thumbnails, and the displays to
    refresh after a job changes the engine's state.

    `allow` is told about a library folder catalogued from the app, so its covers may be served.
    `jobs_done` (set by the app before the tabs are built) changes each time a job finishes; a tab
    that shows what a job writes refreshes on it (`after_jobs`).
    """

    service: Any
    allow: Callable[[Path], None]
    jobs: JobRunner
    thumbs: Thumbnails | None = None
    hooks: list[tuple[Callable[[], Any], Any]] = field(default_factory=list)
    jobs_done: Any = None

    def on_change(self, fn: Callable[[], Any], outputs: Any) -> None:
        self.hooks.append((fn, outputs))

    def after_jobs(self, fn: Handler, inputs: Any, outputs: Any) -> None:
        """Run `fn` again whenever a background job finishes (its view may have changed)."""
        self.jobs_done.change(fn, inputs, outputs, api_visibility="private", show_progress="hidden",
                              concurrency_id="views", concurrency_limit=None)

    def submit(self, kind: str, label: str, work: Callable[[Callable[[float, str], None]], Any],
               describe: Callable[[Any], str] = str) -> str:
        """Queue a background job; the message says where its progress shows."""
        running = [j for j in self.jobs.active()]
        job = self.jobs.submit(kind, label, work, describe)
        where = f"queued behind {running[0].label}" if running else "started"
        return (f"Job **{job.id}** ({label}) {where}: its progress and log show under **Jobs** at the top; "
                "searches keep answering meanwhile.")

    def image_of(self, hit: Any, root: str | None = None) -> Any:
        """The cover to show in a gallery: its thumbnail, or the full cover when none can be made
        (a file's path, or an embedded picture decoded: see `service.cover_image`). With the page's
        `root` URL (`ui.thumb_urls.root_url`), the thumbnail by URL: gradio passes it through as is."""
        source = getattr(hit, "source", "file")
        full = lambda: self.service.cover_image(hit.path, source)  # noqa: E731 (read only when the thumbnail is missing)
        thumb = self.thumbs.get(hit.id, full) if self.thumbs is not None else None
        if thumb is not None:
            return thumb_url(root, hit.id) if root else thumb
        value = full()
        return str(value) if isinstance(value, (str, Path)) else value
