"""The app follows an index rebuilt by another process: never a stale answer, and no restart.

The service `coverlens serve` builds (from its own parsed arguments) runs behind the Gradio app on
loopback and answers `/search` for one cover of each genre. Then the library changes: the two
nearest covers of each query are deleted and two copies of it (one pixel changed) are added, and
`coverlens index --rebuild` runs in a second process while the app keeps being asked. After the
rebuild every app answer equals `coverlens similar --json` run in a fresh process, and names none
of the deleted covers. A reader on the handle it opened before answers from the old store (which
names them) or fails on the deleted collection: with the generation check of store/freshness.py
turned off, this test fails (the app's answer after the rebuild is a Chroma error, no covers).

Answers during the rebuild are the old store's answer, the new store's, or flagged with the
incomplete-store note (covers of the store being rebuilt only); or no covers at all, with a typed
message (recorded: what it said). Never a partial answer shown as whole, never a raw error.
The app's status says when the store last changed, and that moves with the rebuild.

`make test` runs one rebuild; `make stress` runs TRIALS rebuilds on the same running app and
records what it saw.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import stress
from app_search import Answer, ask
from coverlens.catalog import load_catalog
from coverlens.cli import build_parser, main
from coverlens.cli.common import open_service
from coverlens.store.freshness import read_generation
from coverlens.workspace import Workspace
from libraries import spread_projection, trained_library
from local_servers import launch_local

gradio_client = pytest.importorskip("gradio_client")

pytestmark = pytest.mark.reliability

TRIALS = stress.scale(fast=1, stress=8)
K = 5
DELETED_PER_QUERY = 2  # the nearest covers of each query, deleted before each rebuild
ADDED_PER_QUERY = 2  # copies of each query, added before each rebuild
CAPTION_ROUNDING = 0.006  # the app's captions print similarities to 2 decimals
TIE = 1e-4  # covers this close in similarity may come back in either order
COMMAND_TIMEOUT_S = 300
PAUSE_S = 0.1  # between searches during a rebuild: steady asking, not a CPU hog on a shared machine
CHANGED = re.compile(r"store last changed (\S+)")
INCOMPLETE_NOTE = "the store is incomplete"
COVERLENS = str(Path(sys.executable).parent / "coverlens")


def test_app_answers_like_the_cli_after_a_rebuild_from_another_process(trained_workspace: Workspace,
                                                                       tmp_path: Path) -> None:
    workspace = trained_library(tmp_path, trained_workspace, genres=3, per_genre=12, seed=7)
    spread_projection(workspace)
    library = tmp_path / "library"
    queries = [sorted(folder.glob("*.jpg"))[0] for folder in sorted(library.iterdir())]
    assert main(["index", "-w", str(workspace.root), "--embedder", "finetuned"]) == 0

    service = open_service(build_parser().parse_args(["serve", "-w", str(workspace.root)]))  # as `serve` does
    demo = launch_local(service)
    try:
        client = gradio_client.Client(demo.local_url, verbose=False, download_files=False, ssl_verify=False)
        before = {query: ask(client, query, K) for query in queries}
        figures: dict[str, Any] = {"searches_during": 0, "old_answer": 0, "new_answer": 0, "flagged": 0,
                                   "no_covers_flagged": 0, "no_covers": 0, "no_covers_said": set(),
                                   "after_equal_cli": 0, "deleted_covers_in_answers_before": 0, "rebuild_s": []}
        for trial in range(TRIALS):
            before = rebuild_trial(workspace, library, client, queries, before, trial, figures)
    finally:
        demo.close()
        service.close()
    rebuilds = sorted(figures.pop("rebuild_s"))
    figures["no_covers_said"] = sorted(figures["no_covers_said"])  # what the app said when it showed no covers
    stress.record("app follows `index --rebuild` from another process (no restart)", trials=TRIALS,
                  queries_per_trial=len(queries), **figures, rebuild_s_median=rebuilds[len(rebuilds) // 2],
                  rebuild_s_max=rebuilds[-1])


def rebuild_trial(workspace: Workspace, library: Path, client: Any, queries: list[Path],
                  before: dict[Path, Answer], trial: int, figures: dict[str, Any]) -> dict[Path, Answer]:
    """Change the library, rebuild from another process while searching, check the app against the CLI;
    the answers after it (the next trial's `before`)."""
    status_before = status_changed(client)
    gone = delete_nearest(workspace, library, before)
    for query in queries:
        add_copies(query, trial)

    started = time.monotonic()
    indexer = subprocess.Popen(
        [COVERLENS, "index", "--rebuild", "-w", str(workspace.root), "--embedder", "finetuned", "--batch-size", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    during: list[Answer | BaseException] = []
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    try:
        while indexer.poll() is None and time.monotonic() < deadline:
            try:
                during.append(ask(client, queries[len(during) % len(queries)], K))
            except Exception as exc:  # gradio's "Error": a raw failure inside the app
                during.append(exc)
            time.sleep(PAUSE_S)
        out, err = indexer.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if indexer.poll() is None:
            indexer.kill()
            indexer.wait()
    assert indexer.returncode == 0, err
    assert "Traceback" not in out + err
    figures["rebuild_s"].append(round(time.monotonic() - started, 1))

    after = {query: ask(client, query, K) for query in queries}
    truth = cli_similar(workspace, queries)
    for query in queries:
        app = after[query]
        assert INCOMPLETE_NOTE not in app.message, app.message
        assert_same(app, truth[query])  # the app answers like a fresh process: no stale handle
        assert not gone & set(app.ids), f"deleted covers still served: {gone & set(app.ids)}"
        assert before[query].ids != app.ids  # what a stale handle returns is provably different
        figures["after_equal_cli"] += 1
        figures["deleted_covers_in_answers_before"] += len(gone & set(before[query].ids))

    new_ids = set(load_catalog(workspace)["id"])
    for answer in during:
        kind = classify(answer, before, after, new_ids)
        figures[kind] += 1
        if kind == "no_covers":
            figures["no_covers_said"].add(re.sub(r"/\S+", "PATH", answer.message.strip())[:90])
    figures["searches_during"] += len(during)

    status_after = status_changed(client)
    generation = read_generation(workspace.store_dir)
    assert generation is not None and generation.pid != os.getpid()  # the rebuild's process wrote it
    assert status_after == generation.changed != status_before
    return after


def classify(answer: Answer | BaseException, before: dict[Path, Answer], after: dict[Path, Answer],
             new_ids: set[str]) -> str:
    """What one search during the rebuild saw; fails on a raw error or an unflagged partial answer."""
    assert not isinstance(answer, BaseException), f"a raw error during the rebuild: {answer!r}"
    assert "Traceback" not in answer.message
    if not answer.neighbours:  # recorded by what the app said: a store error, nothing indexed, flagged
        assert answer.message.strip(), "no covers and no word why"
        return "no_covers_flagged" if INCOMPLETE_NOTE in answer.message else "no_covers"
    if INCOMPLETE_NOTE in answer.message:
        assert set(answer.ids) <= new_ids, answer  # flagged: covers of the store being rebuilt
        return "flagged"
    if same_ids(answer, before[answer.query].neighbours):
        return "old_answer"
    assert same_ids(answer, after[answer.query].neighbours), f"an unflagged answer of neither store: {answer}"
    return "new_answer"


# --- the CLI's answer, the app's status -----------------------------------------------------------

# `coverlens similar --json QUERY` for each query, through the CLI's entry point (what the `coverlens`
# script calls), in one fresh process: one import of torch instead of one per query.
SIMILAR = """
import contextlib, io, json, sys
from coverlens.cli import main
workspace, k, *queries = sys.argv[1:]
for query in queries:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["similar", query, "--json", "-k", k, "--embedder", "finetuned", "-w", workspace])
    print(json.dumps({"query": query, "code": code, "rows": json.loads(out.getvalue()) if code == 0 else None}))
"""


def cli_similar(workspace: Workspace, queries: list[Path]) -> dict[Path, list[tuple[str, str, float]]]:
    """The CLI's answer for each query from a process that never saw the store before: (genre, id,
    similarity) rows."""
    done = subprocess.run([sys.executable, "-c", SIMILAR, str(workspace.root), str(K), *map(str, queries)],
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    answers = {}
    for line in done.stdout.splitlines():
        answer = json.loads(line)
        assert answer["code"] == 0, done.stderr
        answers[Path(answer["query"])] = [(row["genre"], row["id"], row["similarity"]) for row in answer["rows"]]
    assert set(answers) == set(queries)
    return answers


def status_changed(client: Any) -> str:
    """When the app's status says the store last changed."""
    found = CHANGED.search(client.predict(api_name="/engine_status"))
    assert found, "the app's status does not say when the store last changed"
    return found.group(1)


def assert_same(app: Answer, cli: list[tuple[str, str, float]]) -> None:
    """The same covers in the same order (ties either way), with the same genres and similarities."""
    assert len(app.neighbours) == len(cli) == K, (app, cli)
    assert same_ids(app, cli), (app.neighbours, cli)
    shown = {cover_id: (genre, similarity) for genre, cover_id, similarity in app.neighbours}
    for genre, cover_id, similarity in cli:
        assert shown[cover_id][0] == genre and abs(shown[cover_id][1] - similarity) <= CAPTION_ROUNDING


def same_ids(app: Answer, reference: list[tuple[str, str, float]]) -> bool:
    """`app` names the reference's covers in its order, covers in a tie (within TIE) in any order."""
    if len(app.ids) != len(reference):
        return False
    start = 0
    for end in range(1, len(reference) + 1):
        if end == len(reference) or reference[end - 1][2] - reference[end][2] > TIE:
            if set(app.ids[start:end]) != {cover_id for _, cover_id, _ in reference[start:end]}:
                return False
            start = end
    return True


# --- the library changes between two index runs -------------------------------------------------

def delete_nearest(workspace: Workspace, library: Path, answers: dict[Path, Answer]) -> set[str]:
    """Delete the files of the nearest covers of each query (never a query: one query may be another's
    neighbour); their ids."""
    from coverlens.search.similar import content_id

    queries = {content_id(query.read_bytes()) for query in answers}
    catalog = load_catalog(workspace)
    gone: set[str] = set()
    for answer in answers.values():
        gone.update([cover_id for cover_id in answer.ids if cover_id not in queries][:DELETED_PER_QUERY])
    for relpath in catalog.loc[catalog["id"].isin(gone), "path"]:
        (library / relpath).unlink(missing_ok=True)
    return gone


def add_copies(query: Path, trial: int) -> None:
    """New covers: copies of `query` with one pixel's lowest bits flipped (new content ids)."""
    for n in range(ADDED_PER_QUERY):
        image = Image.open(query).convert("RGB")
        where = (n, trial % image.height)
        image.putpixel(where, tuple(channel ^ 1 for channel in image.getpixel(where)))
        image.save(query.parent / f"copy-{trial}-{n}-{query.stem}.png")
