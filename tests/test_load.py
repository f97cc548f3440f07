"""Load: the app and a Chroma server on loopback answer concurrent searches while an indexing run
adds covers. Every answer is checked against the vectors the store ends with, the indexer
finishes, and the final store equals the catalog. Requests are bounded in count and in time.

`make test` sends 20 concurrent requests; `make stress` sends 50. The record gives the latency to
the first update (the /search event: nearest covers, head, vote) at p50 and p95. The galleries show
thumbnails named by the cover's id, so answers are checked by id.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import stress
from app_search import Answer, ask
from coverlens.catalog import distinct_covers, load_catalog, run_catalog
from coverlens.cli import main
from coverlens.sample_library import make_sample_library
from coverlens.search.similar import content_id
from coverlens.store import CoverStore
from coverlens.workspace import Workspace
from libraries import trained_library
from local_servers import chroma_server, launch_local

gradio_client = pytest.importorskip("gradio_client")

pytestmark = pytest.mark.reliability

REQUESTS = stress.scale(fast=20, stress=50)
K = 5
INDEX_TIMEOUT_S = 600
CAPTION_ROUNDING = 0.006  # captions print similarities to 2 decimals


def stored_vectors(workspace: Workspace, url: str, embedder: object) -> dict[tuple[str, str], np.ndarray]:
    """(genre, cover id) -> stored vector, for every cover in the store."""
    with CoverStore.open(workspace, url=url) as store:
        everything = store.collection_for(embedder.name, embedder.identity).fetch()
    return {(meta["genre"], cover_id): vector
            for cover_id, meta, vector in zip(everything.ids, everything.metadatas, everything.vectors, strict=True)}


def test_concurrent_searches_while_indexing_adds_covers(trained_workspace: Workspace, tmp_path: Path) -> None:
    from coverlens.classifier import load_classifier
    from coverlens.embedders.backbone import FinetunedBackboneEmbedder
    from coverlens.images import open_image
    from coverlens.service import CoverlensService

    # the trained tiny model over a library of its own, indexed once, then grown by 300 covers
    workspace = trained_library(tmp_path, trained_workspace, genres=3, per_genre=12, seed=5)
    library = tmp_path / "library"
    first_covers = sorted(library.glob("*/*.jpg"))
    with chroma_server(tmp_path / "chroma-data", workspace) as url:
        assert main(["index", "-w", str(workspace.root), "--chroma-url", url, "--embedder", "finetuned"]) == 0
        embedder = FinetunedBackboneEmbedder(load_classifier(workspace))
        before = stored_vectors(workspace, url, embedder)
        assert len(before) == len(first_covers)
        for path in make_sample_library(tmp_path / "extra", genres=3, per_genre=100, size=48, seed=8):
            path.rename(library / path.parent.name / f"new-{path.name}")
        run_catalog(workspace)
        catalog_ids = set(distinct_covers(load_catalog(workspace))["id"])

        service = CoverlensService(workspace, chroma_url=url)
        demo = launch_local(service)
        indexer = subprocess.Popen(
            [str(Path(sys.executable).parent / "coverlens"), "index", "-w", str(workspace.root), "--chroma-url", url,
             "--embedder", "finetuned", "--batch-size", "4"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "index.log", "w"))  # noqa: SIM115
        try:
            wait_for_growth(workspace, url, embedder, len(before), indexer)
            # plain http on loopback: no verifying SSL context per request (client CPU, not the app's)
            client = gradio_client.Client(demo.local_url, verbose=False, download_files=False, ssl_verify=False)
            queries = [first_covers[i % len(first_covers)] for i in range(REQUESTS)]
            sent = time.monotonic()
            with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
                answers = list(pool.map(lambda cover: ask(client, cover, K), queries))
            indexer.wait(timeout=INDEX_TIMEOUT_S)
            index_ended = time.monotonic()
        finally:
            if indexer.poll() is None:
                indexer.kill()
                indexer.wait()
            demo.close()
            service.close()
        assert indexer.returncode == 0, (tmp_path / "index.log").read_text()
        after = stored_vectors(workspace, url, embedder)
        with CoverStore.open(workspace, url=url) as store:
            final_ids = store.collection_for(embedder.name, embedder.identity).ids()
    assert final_ids == catalog_ids  # the indexer finished: every cover once, nothing lost

    query_vectors = embedder.embed([open_image(cover) for cover in first_covers])
    for answer in answers:
        check_answer(answer, query_vectors[first_covers.index(answer.query)], before, after)
    during = sum(answer.finished < index_ended for answer in answers)
    latencies = sorted(answer.seconds for answer in answers)
    stress.record("concurrent app searches while indexing (Chroma server)", requests=REQUESTS,
                  answered_correctly=len(answers), answered_before_the_indexer_ended=during,
                  covers_added_meanwhile=len(after) - len(before), store_equals_catalog=True,
                  first_update_p50_s=round(latencies[len(latencies) // 2], 2),
                  first_update_p95_s=round(latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)], 2),
                  max_s=round(latencies[-1], 2),
                  all_sent_to_indexer_end_s=round(index_ended - sent, 1),
                  load_1min=round(os.getloadavg()[0], 1), cores=os.cpu_count())
    assert during >= 1  # the first requests were answered while the indexer was still writing


def wait_for_growth(workspace: Workspace, url: str, embedder: object, count: int, indexer: subprocess.Popen) -> None:
    """Block until the indexer has written its first new covers, so requests meet a growing store."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert indexer.poll() is None, "the indexer ended before the requests were sent"
        with CoverStore.open(workspace, url=url) as store:
            if store.collection_for(embedder.name, embedder.identity).count() > count:
                return
        time.sleep(0.1)
    pytest.fail("the indexer wrote nothing in 120 s")


def check_answer(answer: Answer, query: np.ndarray, before: dict, after: dict) -> None:
    """Right neighbours: real covers, the query left out, sorted, with the similarity their stored
    vectors give, and at least as near as the best covers stored before indexing began."""
    assert "error" not in answer.message.lower(), answer.message
    assert len(answer.neighbours) == K, answer
    shown = [s for _, _, s in answer.neighbours]
    assert shown == sorted(shown, reverse=True)
    own = (answer.query.parent.name, content_id(answer.query.read_bytes()))
    for genre, name, similarity in answer.neighbours:
        assert (genre, name) in after and (genre, name) != own
        assert abs(float(after[(genre, name)] @ query) - similarity) <= CAPTION_ROUNDING
    floor = sorted((float(v @ query) for key, v in before.items() if key != own), reverse=True)[K - 1]
    assert shown[-1] >= floor - CAPTION_ROUNDING  # the store only grew: never a worse answer
