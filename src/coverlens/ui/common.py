"""What every tab shares: turning CoverlensErrors into visible messages, progress, state notes."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from coverlens.errors import CoverlensError
from coverlens.ui.formatting import error_markdown

Handler = Callable[..., Any]


class Serialized:
    """The service with one call at a time.

    Gradio runs events in a thread pool; the service builds its collaborators (the Chroma client,
    one per store directory per process, and the models) on first use and swaps the store for a
    writer while indexing. One lock around every method call keeps two events from doing that at
    once; a search waits while an index run holds the service.
    """

    def __init__(self, service: Any) -> None:
        self._service = service
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._service, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return call


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


def progress_callback(progress: gr.Progress) -> Callable[[float, str], None]:
    """The service reports (fraction, message); gradio's tracker takes (fraction, desc=...)."""

    def report(fraction: float, message: str) -> None:
        progress(max(0.0, min(1.0, float(fraction))), desc=message)

    return report


def missing_markdown(what: str, service: Any) -> str:
    """'No X yet' plus the engine's next step, for tabs whose data does not exist yet."""
    try:
        step = service.status().next_step
    except CoverlensError as exc:
        step = str(exc)
    return f"{what}\n\n**Next step:** {step}" if step else what


@dataclass
class Shell:
    """What the tabs share: the service, and the displays to refresh after an action changes state.

    `allow` is told about a library folder catalogued from the app, so its covers may be served.
    """

    service: Any
    allow: Callable[[Path], None]
    hooks: list[tuple[Callable[[], Any], Any]] = field(default_factory=list)

    def on_change(self, fn: Callable[[], Any], outputs: Any) -> None:
        self.hooks.append((fn, outputs))

    def refresh_after(self, event: Any) -> Any:
        """Chain every registered refresh after `event` (catalog, index, clustering, evaluation)."""
        for fn, outputs in self.hooks:
            event = event.then(fn, None, outputs, api_visibility="private")
        return event
