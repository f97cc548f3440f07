"""Pay umap-learn's import and numba's JIT compile once per process, apart from any clustering.

`warm_up()` imports umap and runs the code paths a clustering takes on a few random points: the
cosine layout with the exact neighbours of a small library, and pynndescent's approximate ones
(a library over 4,096 covers). 10-20 s cold on 2 idle cores (numba caches part of its work on disk,
so the very first run on a machine costs more), then nothing. `UMAP.transform` is not warmed: the
placement of new covers does not use it (place.py). The app calls it in a background thread at
start; `cluster_vectors` calls it first and reports its cost as `compile_seconds`, apart from the
clustering time.
"""

from __future__ import annotations

import threading
import time

APPROXIMATE_FROM = 4_096  # umap takes pynndescent's approximate neighbours from this many points on

_lock = threading.Lock()
_warm = {"layout": False, "nndescent": False}


def is_warm(large: bool = True) -> bool:
    return _warm["layout"] and (_warm["nndescent"] or not large)


def warm_up(large: bool = True) -> float:
    """Seconds spent warming now (0.0 when this process is already warm). Safe from any thread.
    `large=False` skips pynndescent (about half the cost), which libraries under 4,096 covers never use."""
    with _lock:
        started = time.perf_counter()
        import numpy as np

        points = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
        if not _warm["layout"]:
            import umap

            umap.UMAP(n_components=5, n_neighbors=5, min_dist=0.0, metric="cosine", random_state=0, n_jobs=1,
                      n_epochs=5).fit(points)
            _warm["layout"] = True
        if large and not _warm["nndescent"]:
            from pynndescent import NNDescent

            NNDescent(points, metric="cosine", n_neighbors=5, random_state=0, n_jobs=1)
            _warm["nndescent"] = True
        return time.perf_counter() - started


def warm_up_in_background() -> threading.Thread:
    """Start `warm_up()` in a daemon thread (the app calls this at start) and return the thread."""
    thread = threading.Thread(target=_warm_quietly, name="coverlens-umap-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_quietly() -> None:
    import logging

    try:
        warm_up()
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first clustering pays the compile
        logging.getLogger(__name__).warning("umap warm-up failed; the first clustering will compile", exc_info=True)
