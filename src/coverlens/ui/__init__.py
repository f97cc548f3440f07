"""The Gradio app: `build_app(service)` makes the Blocks, `launch_app(service)` serves them.

Importing this package imports nothing heavy; gradio is loaded by `coverlens.ui.app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr


def build_app(service: Any) -> gr.Blocks:
    from coverlens.ui.app import build_app as build

    return build(service)


def launch_app(service: Any, host: str = "127.0.0.1", port: int | None = None, **kwargs: Any) -> gr.Blocks:
    from coverlens.ui.app import launch_app as launch

    return launch(service, host=host, port=port, **kwargs)
