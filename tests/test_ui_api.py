"""The Gradio app through its HTTP API (gradio_client), with a fake service behind it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from coverlens.images import MAX_UPLOAD_BYTES
from local_servers import launch_local
from ui_fakes import (
    CLIP_NOTE,
    FAKE_NOTE,
    HEAD_GENRE,
    METHOD_NAMES,
    NEXT_STEP_EMPTY,
    VOTE_GENRE,
    FakeService,
)

gradio_client = pytest.importorskip("gradio_client")


class Running:
    """A launched app, its fake service and a client."""

    def __init__(self, service: FakeService) -> None:
        self.service = service
        self.demo = launch_local(service)
        self.url = self.demo.local_url.rstrip("/")
        self.client = gradio_client.Client(self.url, verbose=False, download_files=False)

    def call(self, *args: object, api: str) -> object:
        return self.client.predict(*args, api_name=f"/{api}")


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running(FakeService(tmp_path_factory.mktemp("ready")))
    yield running
    running.demo.close()


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running(FakeService(tmp_path_factory.mktemp("empty"), ready=False))
    yield running
    running.demo.close()


def captions(gallery: list[dict]) -> list[str]:
    return [item["caption"] for item in gallery]


def test_search_upload_shows_prediction_vote_evidence_neighbours_and_cluster(ready: Running) -> None:
    cover = ready.service.library / ready.service.covers[4][0]
    before = len(ready.service.calls)
    message, query, head, vote, vote_scores, evidence, neighbours, cluster = ready.call(
        gradio_client.handle_file(str(cover)), None, 7, "finetuned", api="search")
    assert ready.service.calls[before:] == [("search", {"k": 7, "offset": 0, "embedder": "finetuned"})]
    assert head["label"] == HEAD_GENRE and head["confidences"][0]["confidence"] == pytest.approx(0.7)
    assert vote_scores["label"] == VOTE_GENRE
    assert VOTE_GENRE in vote and "60%" in vote
    # head and vote disagree in the fake: the note says so, and the service's notes follow
    assert HEAD_GENRE in message and VOTE_GENRE in message and FAKE_NOTE in message
    first_genre = ready.service.covers[0][1]
    assert captions(evidence) == [f"{first_genre} · 0.95", f"{first_genre} · 0.94", f"{first_genre} · 0.93"]
    assert len(neighbours) == 7 and captions(neighbours)[:3] == captions(evidence)
    assert "Cluster **1**" in cluster and VOTE_GENRE in cluster
    assert query and query["path"].endswith(cover.name)


def test_search_a_library_cover_by_its_path(ready: Running) -> None:
    path, _ = ready.service.covers[2]
    message, query, head, *_, neighbours, cluster = ready.call(None, path, 3, "clip", api="search")
    assert ready.service.calls[-1] == ("search", {"k": 3, "offset": 0, "embedder": "clip"})
    assert head["label"] == HEAD_GENRE and len(neighbours) == 3


def test_search_without_a_cover_asks_for_one(ready: Running) -> None:
    message, *rest = ready.call(None, None, 5, "finetuned", api="search")
    assert "Upload a cover" in message and not any(rest)


def test_more_asks_for_another_page_of_covers(ready: Running) -> None:
    assert ready.call(10, api="more") == 20
    assert ready.call(95, api="more") == 100  # capped


def test_bad_upload_is_a_message_not_an_exception(ready: Running, tmp_path: Path) -> None:
    fake = tmp_path / "cover.png"
    fake.write_text("this is not a picture", encoding="utf-8")
    message, query, head, vote, vote_scores, evidence, neighbours, cluster = ready.call(
        gradio_client.handle_file(str(fake)), None, 5, "finetuned", api="search")
    assert "not an image" in message and "cover.png" in message
    assert not head and not evidence and not neighbours and not query


@pytest.mark.reliability
def test_upload_over_the_size_limit_is_refused(ready: Running) -> None:
    assert ready.demo.max_file_size == MAX_UPLOAD_BYTES
    big = b"\0" * (MAX_UPLOAD_BYTES + 1024)
    response = httpx.post(f"{ready.url}/gradio_api/upload", files={"files": ("big.png", big, "image/png")},
                          timeout=30)
    assert response.status_code == 413


@pytest.mark.reliability
def test_files_outside_library_and_workspace_are_refused(ready: Running) -> None:
    cover = ready.service.library / ready.service.covers[0][0]
    report = ready.service.workspace.reports_dir / "cluster_map.png"
    for allowed in (cover, report):
        assert httpx.get(f"{ready.url}/gradio_api/file={allowed}", timeout=10).status_code == 200
    library = ready.service.library.resolve()
    outside = [str(Path("/etc/passwd")), str(Path(__file__).resolve()),
               str(Path(__file__).resolve().parents[1] / "pyproject.toml"),
               f"{library}/../../../../../../etc/passwd",  # traversal out of an allowed folder
               f"{library}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",  # the same, percent-encoded
               f"{ready.service.workspace.root.resolve()}/../../../../../../etc/passwd"]
    for path in outside:
        response = httpx.get(f"{ready.url}/gradio_api/file={path}", timeout=10)
        assert response.status_code in (400, 403, 404), path
        assert "root:" not in response.text
    assert ready.demo.allowed_paths == [str(ready.service.library.resolve()),
                                        str(ready.service.workspace.root.resolve())]


def test_status_header_names_the_clip_note(ready: Running) -> None:
    text = ready.call(api="engine_status")
    assert CLIP_NOTE in text and "finetuned" in text and "unavailable" in text


def test_overview_has_counts_chart_and_problem_tables(ready: Running) -> None:
    message, summary, chart, genres, problems, duplicates, conflicts, placeholders = ready.call(api="overview")
    assert message == "" and "unreadable" in summary and "48x48" in summary
    assert "**2** unlabelled" in summary and "source: **music**" in summary  # the library's kind, by name
    assert [row[0] for row in genres["data"]] == ["ambient", "country", "hiphop"]
    assert chart is not None
    assert problems["data"] == [["ambient/broken.png", "ambient", "not an image (fake)"]]
    assert duplicates["data"][0][:3] == ["dup012345678", 2, "ambient, hiphop"]
    assert len(conflicts["data"]) == 1
    assert placeholders["data"] in ([], [[None] * 4], [["", "", "", ""]])  # none: an empty table


def finished_job(running: Running, message: str, timeout: float = 30) -> dict:
    """The job a 'Job **id** ... started' message names, once it has finished (polled through the API)."""
    import re
    import time

    found = re.search(r"Job \*\*([\w-]+)\*\*", message)
    assert found, message
    deadline = time.monotonic() + timeout
    while True:
        job = running.call(found.group(1), api="job")
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_catalog_and_index_run_as_background_jobs(ready: Running, tmp_path: Path) -> None:
    text = ready.call(str(tmp_path), api="catalog")
    assert "Jobs" in text  # the message says where the progress shows
    job = finished_job(ready, text)
    assert job["state"] == "done" and "Catalogued" in job["summary"]
    assert ready.service.calls[-1] == ("catalog", tmp_path)
    assert any("catalog" in line for line in job["log"])  # the progress messages are logged
    assert "type the library folder" in ready.call("  ", api="catalog")
    job = finished_job(ready, ready.call(api="index"))
    assert job["state"] == "done" and "indexed" in job["summary"]
    status, table, *_ = ready.call(api="jobs")  # what a new page load lists
    assert job["id"] in [row[0] for row in table["data"]]


def test_clusters_table_map_and_members(ready: Running) -> None:
    # buttons are not part of an endpoint's API outputs: the Run button's visibility is not returned
    message, summary, table, cluster_map, choice, mix, members = ready.call("finetuned", api="clusters")
    genres = sorted({g for _, g in ready.service.covers})
    assert [row[2] for row in table["data"]] == genres
    assert [row[5] for row in table["data"]] == [f"{g}word, live" for g in genres]  # c-TF-IDF words
    assert "ARI 0.420" in summary and "3** clusters" in summary
    assert cluster_map and cluster_map["path"].endswith("cluster_map.png")
    note, mix, members = ready.call(1, "finetuned", api="cluster")
    assert mix["data"] == [[genres[1], 5], ["stray", 1]]
    assert captions(members) and all(c.startswith(genres[1]) for c in captions(members))


def test_evaluation_table_and_plots(ready: Running) -> None:
    message, table, f1, confusion, raw = ready.call(api="evaluation")
    assert all(name in table for name in METHOD_NAMES)
    assert "![" not in table  # image links are stripped: the images are shown beside the table
    assert f1["path"].endswith("per_genre_f1.png")
    assert captions(confusion) == ["confusion head", "confusion knn finetuned"]
    assert raw["n_test"] == 4


def test_suspects_and_their_evidence(ready: Running) -> None:
    assert "No suspects yet" in ready.call("clip", api="suspects")[0]  # never found for clip
    job = finished_job(ready, ready.call("finetuned", api="run_suspects")[0])  # a background job
    assert job["state"] == "done" and "2 label suspects, 1 near-duplicate pairs" in job["summary"]
    assert any("reading the stored vectors" in line for line in job["log"])
    message, table, choice, evidence, pairs, pair_gallery, = ready.call("finetuned", api="suspects")
    (a, ga), (b, gb) = ready.service.covers[0], ready.service.covers[-1]
    assert "2 label suspects" in message and "1 near-duplicate" in message
    assert [row[1:4] for row in table["data"]] == [[a, ga, gb], [b, gb, ga]]
    assert captions(evidence)[0] == f"suspect · filed {ga}" and len(evidence) == 4
    assert pairs["data"][0][:4] == [a, ga, b, gb] and len(pair_gallery) == 2
    note, evidence = ready.call(1, api="suspect")
    assert captions(evidence)[0] == f"suspect · filed {gb}" and len(evidence) == 3


def test_suggestions_list_covers_evidence_and_the_csv(ready: Running, tmp_path: Path) -> None:
    import pandas as pd

    (a, _), (b, gb) = ready.service.covers[0], ready.service.covers[-1]
    job = finished_job(ready, ready.call("clip", api="suggest")[0])  # a background job
    assert job["state"] == "done" and "1 suggestions for 1 unlabelled" in job["summary"], job
    assert ready.service.calls[-1][0] == "suggest" and ready.service.calls[-1][1]["embedder"] == "clip"
    message, table, gallery, csv_file = ready.call(api="suggestions")  # what the tab shows after the job
    assert "**1** suggestions for the **1** unlabelled" in message and "fake suggestions" in message
    assert [row[:5] for row in table["data"]] == [["unlabelled", a, "-", VOTE_GENRE, 0.8],
                                                  ["suspect", b, gb, HEAD_GENRE, 0.75]]
    assert table["data"][0][5].startswith(f"head {VOTE_GENRE} 70% · vote {VOTE_GENRE} 90%")
    assert captions(gallery) == [f"{VOTE_GENRE} · 80% · {a}", f"{HEAD_GENRE} · 75% · {b}"]
    downloaded = tmp_path / "suggestions.csv"
    downloaded.write_bytes(httpx.get(f"{ready.url}/gradio_api/file={csv_file['path']}").content)
    frame = pd.read_csv(downloaded, keep_default_na=False)
    assert list(frame["path"]) == [a, b] and list(frame["suggested_genre"]) == [VOTE_GENRE, HEAD_GENRE]
    # opening the tab again shows the suggestions written, without running them again
    calls = len(ready.service.calls)
    message, table, gallery, csv_file = ready.call(api="suggestions")
    assert len(ready.service.calls) == calls and len(table["data"]) == 2 and csv_file is not None


def test_nothing_exists_yet_every_tab_says_what_to_do(empty: Running, tmp_path: Path) -> None:
    assert NEXT_STEP_EMPTY in empty.call(api="engine_status")
    message, *rest = empty.call(None, None, 5, "finetuned", api="search")
    assert "Upload a cover" in message
    cover = tmp_path / "probe.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(cover)
    message, *rest = empty.call(gradio_client.handle_file(str(cover)), None, 5, "finetuned", api="search")
    assert "coverlens catalog" in message and not any(rest)
    message, *rest = empty.call(api="overview")
    assert "No library catalogued yet" in message and NEXT_STEP_EMPTY in message
    message, summary, table, cluster_map, *_ = empty.call("finetuned", api="clusters")
    assert "No clusters yet" in message and NEXT_STEP_EMPTY in message and cluster_map is None
    # a job that cannot run fails, and its error is what the person reads
    job = finished_job(empty, empty.call("finetuned", api="run_clusters")[0])
    assert job["state"] == "failed" and "run `coverlens index` first" in job["error"]
    message, table, f1, confusion, *_ = empty.call(api="evaluation")
    assert "No evaluation yet" in message and NEXT_STEP_EMPTY in message and f1 is None
    job = finished_job(empty, empty.call(api="run_evaluation")[0])
    assert job["state"] == "failed" and "coverlens catalog" in job["error"]
    message = empty.call("finetuned", api="suspects")[0]
    assert "No suspects yet" in message and NEXT_STEP_EMPTY in message
    assert "coverlens catalog" in finished_job(empty, empty.call("finetuned", api="run_suspects")[0])["error"]
    assert "No suggestions yet" in empty.call(api="suggestions")[0]
    assert "coverlens catalog" in finished_job(empty, empty.call("finetuned", api="suggest")[0])["error"]
    assert "coverlens catalog" in finished_job(empty, empty.call(api="index"))["error"]
    status, *_ = empty.call(api="jobs")
    assert "coverlens catalog" in status  # the last failed job's error heads the Jobs panel
    # a library catalogued from the app becomes servable (and nothing else does)
    library = tmp_path / "new-library"
    library.mkdir()
    assert "Catalogued" in finished_job(empty, empty.call(str(library), api="catalog"))["summary"]
    assert empty.demo.allowed_paths == [str(empty.service.workspace.root.resolve()), str(library.resolve())]


@pytest.mark.reliability
def test_serve_command_builds_the_service_and_launches_on_localhost(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    import coverlens.ui.app
    from coverlens.cli import build_parser, common
    from coverlens.clustering import warm

    made: dict[str, object] = {}

    class Service:
        def __init__(self, workspace: object, *, chroma_url: str | None = None, options: object = None) -> None:
            made.update(workspace=workspace, chroma_url=chroma_url)

    monkeypatch.setattr(common, "SERVICE_FACTORY", Service)
    monkeypatch.setattr(coverlens.ui.app, "launch_app",
                        lambda service, host, port: made.update(service=service, host=host, port=port))
    monkeypatch.setattr(warm, "warm_up_in_background", lambda: made.update(warming="service" in made))
    args = build_parser().parse_args(["serve", "-w", str(tmp_path / "ws"), "--chroma-url", "http://127.0.0.1:8000"])
    assert args.handler(args) == 0
    assert made["warming"] is False  # umap's compile started in the background before the app launched
    assert made["host"] == "127.0.0.1" and made["port"] == 7860 and isinstance(made["service"], Service)
    assert made["workspace"].root == (tmp_path / "ws").resolve() and made["chroma_url"] == "http://127.0.0.1:8000"


def test_real_service_smoke_on_a_generated_library(tmp_path: Path) -> None:
    """The real service behind the app, catalogued but not trained: every tab answers, none fails."""
    service_module = pytest.importorskip("coverlens.service", reason="coverlens.service is not written yet")
    from coverlens.sample_library import GENRE_NAMES, make_sample_library
    from coverlens.workspace import Workspace

    library = tmp_path / "library"
    covers = make_sample_library(library, genres=3, per_genre=8, size=48, seed=2)
    service = service_module.CoverlensService(Workspace(tmp_path / "workspace"))
    service.catalog(library)
    running = Running(service)
    try:
        assert str(library.resolve()) in running.demo.allowed_paths
        assert "**24** covers catalogued" in running.call(api="engine_status")
        message, summary, chart, genres, *_ = running.call(api="overview")
        assert [row[0] for row in genres["data"]] == list(GENRE_NAMES[:3]) and "24" in summary
        # no model, no index yet: the search answers with results or with what to do, never an exception
        message, *_ = running.call(gradio_client.handle_file(str(covers[0])), None, 5, "finetuned", api="search")
        assert "coverlens train" in message  # the service's note, shown
        message, *_ = running.call("finetuned", api="clusters")
        assert isinstance(message, str)
        message, table, *_ = running.call(api="evaluation")
        assert "No evaluation yet" in message
    finally:
        running.demo.close()


def test_cluster_placement_outside_every_cluster_is_said_plainly() -> None:
    from coverlens.ui.formatting import cluster_markdown
    from ui_fakes import ClusterPlacement

    assert "noise" in cluster_markdown(ClusterPlacement(-1, "", 0.0))
    assert "Clusters tab" in cluster_markdown(None)


def test_find_shows_the_matched_text_under_each_cover(ready: Running) -> None:
    message, found = ready.call("greatest", api="find")
    assert ready.service.calls[-1] == ("find", {"query": "greatest", "k": 20, "offset": 0})
    assert "20 covers" in message and len(found) == 20
    assert captions(found)[0].endswith("· [GREATEST] / FAKE")
    message, found = ready.call("  ", api="find")
    assert "Type some words" in message and not found
