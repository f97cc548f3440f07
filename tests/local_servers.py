"""Real servers on loopback for tests: a Chroma server (`chroma run`) and the Gradio app."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from coverlens.errors import StoreError
from coverlens.store import CoverStore
from coverlens.workspace import Workspace


def free_port() -> int:
    """A local port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_local(service: Any) -> Any:
    """The app on 127.0.0.1 with `service` (real or fake) behind it, serving in a background thread."""
    from coverlens.ui.app import launch_app

    return launch_app(service, port=free_port(), prevent_thread_lock=True, quiet=True)


@contextmanager
def chroma_server(data_dir: Path, workspace: Workspace) -> Iterator[str]:
    """Start `chroma run` on a free loopback port, wait until `workspace` can open it, yield its URL."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not os.access(chroma, os.X_OK):
        pytest.skip("the `chroma` executable (chromadb's server CLI) is not installed next to this Python")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([chroma, "run", "--path", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                CoverStore.open(workspace, url=url).close()
                break
            except StoreError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
