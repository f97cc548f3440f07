"""The `serve` command: the Gradio app over the workspace's service (gradio is imported only when run)."""

from __future__ import annotations

import argparse

from coverlens.cli.common import add_store_option, add_workspace_option, int_in_range, open_service
from coverlens.defaults import HOST as DEFAULT_HOST
from coverlens.defaults import PORT as DEFAULT_PORT


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="serve the Gradio app (search, library, clusters, evaluation, suspects)",
        description="Serve the app on HOST:PORT. It serves the library's and the workspace's files and "
        "nothing else, and works before anything is catalogued: each tab says what to do next.")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to bind (default {DEFAULT_HOST}: this machine only; 0.0.0.0 exposes the "
                   "library to the network)")
    p.add_argument("--port", type=int_in_range(1, 65535), default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add_store_option(p)
    add_workspace_option(p)
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from coverlens.clustering import warm
    from coverlens.errors import CoverlensError
    from coverlens.ui.app import launch_app

    service = open_service(args)
    warm.warm_up_in_background()  # umap's compile, paid while the app starts, never inside a request
    try:
        launch_app(service, host=args.host, port=args.port)  # blocks until Ctrl-C
    except OSError as exc:  # gradio's "Cannot find empty port", or an address that cannot be bound
        raise CoverlensError(f"cannot serve on {args.host}:{args.port} ({exc}); choose another --port") from exc
    return 0
