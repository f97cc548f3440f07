"""Thumbnails by URL: the galleries name each thumbnail by an http URL of a small route of our own.

Why: gradio post-processes every file an event returns on its event loop, twice per output (the
session's copy and the answer): per file it resolves the path against every static and allowed
folder (`Path.resolve`, a syscall per path part) and checks the cache. For the 20 covers of a
search that was the largest share of the app's own time per search, and it held up every other
request meanwhile. An item whose URL is already http(s) is passed through untouched.

The route serves `<thumbs>/<id>.webp` only (the id checked by `Thumbnails.path`), marked immutable:
a thumbnail is named by its cover's content id, so a browser fetches each one once. The URL's root
is the one gradio itself gives the page (`get_root_url`: the request's host, or the proxy's
X-Forwarded-Host), so it works wherever the page does. Without a request (a test calling the
handler), or when anything here fails, the galleries fall back to the file paths.
"""

from __future__ import annotations

from typing import Any

from coverlens.thumbnails import Thumbnails

ROUTE = "/coverlens/thumbs"
IMMUTABLE = "public, max-age=31536000, immutable"


def mount(app: Any, thumbs: Thumbnails) -> None:
    """Add GET (and HEAD) `ROUTE/<id>.webp` to the launched app's FastAPI app."""
    from fastapi.responses import FileResponse, Response

    def serve(name: str) -> Response:
        path = thumbs.path(name.removesuffix(".webp")) if name.endswith(".webp") else None
        if path is None or not path.is_file():
            return Response(status_code=404)
        return FileResponse(path, media_type="image/webp", headers={"Cache-Control": IMMUTABLE})

    app.add_api_route(ROUTE + "/{name}", serve, methods=["GET", "HEAD"], include_in_schema=False)
    app.state.coverlens_thumbs = True


def root_url(request: Any) -> str | None:
    """The page's root URL for this event (None: no request, or the thumbnail route is not mounted)."""
    inner = getattr(request, "request", None) if request is not None else None
    if inner is None:
        return None
    try:
        from gradio import route_utils

        app = inner.app
        if not getattr(app.state, "coverlens_thumbs", False):
            return None
        return route_utils.get_root_url(request=inner, route_path=route_utils.get_api_call_path(request=inner),
                                        root_path=app.root_path)
    except Exception:  # an unusual deployment: the file paths still work
        return None


def thumb_url(root: str, cover_id: str) -> str:
    return f"{root}{ROUTE}/{cover_id}.webp"
