"""The benchmark client's own cost: one app, two gradio_client clients, alternating rounds.

gradio_client builds an httpx client, with a verifying SSL context (the CA bundle loaded), for each
HTTP request it makes, even to plain http; a search is 3 requests (upload, join, stream). In a
benchmark that drives the app from the same machine, that CPU is taken from the server. This
measures the same app with a client that does it (`ssl_verify=True`, gradio_client's default) and one
that does not (`ssl_verify=False`, what bench_app.py and the load test use), side by side.

    python benchmarks/bench_app_client.py --workspace W      # W: an indexed workspace, read only
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import line
from bench_app import K, figures, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=30)
    args = parser.parse_args()

    import gradio_client

    from coverlens.service import CoverlensService
    from coverlens.thumbnails import Thumbnails
    from coverlens.ui.app import launch_app
    from coverlens.workspace import Workspace

    service = CoverlensService(Workspace(args.workspace))
    root = service.library_root()
    covers = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[::3][:200]
    with tempfile.TemporaryDirectory(prefix="bench-app-client-") as folder:
        demo = launch_app(service, port=None, prevent_thread_lock=True, quiet=True, thumbs=Thumbnails(Path(folder)))
        try:
            clients = {verify: gradio_client.Client(demo.local_url, verbose=False, download_files=False,
                                                    ssl_verify=verify) for verify in (True, False)}

            def search(client: gradio_client.Client, cover: Path) -> float:
                started = time.perf_counter()
                client.submit(gradio_client.handle_file(str(cover)), None, K, "finetuned",
                              api_name="/search").result(timeout=300)
                return time.perf_counter() - started

            for client in clients.values():
                for cover in covers[:5]:
                    search(client, cover)  # warm
            print(f"== one app, two clients, {args.rounds} rounds alternating: {load()}")
            for round_no in range(1, args.rounds + 1):
                for verify, client in clients.items():
                    one = [search(client, covers[i % len(covers)]) for i in range(args.searches)]
                    started = time.monotonic()
                    with ThreadPoolExecutor(args.concurrent) as pool:
                        many = list(pool.map(lambda c: search(client, c),  # noqa: B023 (used at once)
                                             [covers[(i * 7) % len(covers)] for i in range(args.concurrent)]))
                    wall = time.monotonic() - started
                    label = f"round {round_no}, ssl_verify={verify}"
                    line(f"{label}: one at a time", figures(one))
                    line(f"{label}: {args.concurrent} at once", figures(many) + f", {args.concurrent / wall:.1f}/s"
                         f"  [{load()}]")
        finally:
            demo.close()
            service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
