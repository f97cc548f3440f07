"""What a person sees: the app in a real headless Chromium (the system one; nothing is downloaded).

Screenshots go to test-output/screenshots/ at the repository root.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from coverlens.sample_library import draw_cover
from local_servers import launch_local
from ui_fakes import HEAD_GENRE, METHOD_NAMES, NEXT_STEP_EMPTY, VOTE_GENRE, FakeService

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (`make browser`) to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def app_page(browser: object, service: FakeService) -> Iterator[object]:
    """The app with `service` behind it, open in a new page that may reach nothing but the app."""
    demo = launch_local(service)
    url = demo.local_url.rstrip("/")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.set_default_timeout(TIMEOUT_MS)
        # Only requests that leave the app pass through Python (to be refused): a route callback runs
        # in this thread, so routing the app's own requests would stall them while a test waits.
        page.route(lambda target: not target.startswith((url, "data:", "blob:")), lambda route: route.abort())
        page.goto(url)
        page.get_by_text("cover genres, nearest covers, clusters").wait_for()
        yield page
    finally:
        page.close()
        demo.close()


@pytest.fixture(scope="module")
def page(browser: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, FakeService]]:
    service = FakeService(tmp_path_factory.mktemp("browser"))
    with app_page(browser, service) as tab:
        yield tab, service


def open_tab(tab: object, name: str) -> None:
    tab.get_by_role("tab", name=name).click()


def test_upload_shows_prediction_evidence_and_neighbours(page: tuple[object, FakeService], tmp_path: Path) -> None:
    tab, service = page
    cover = tmp_path / "my_cover.png"
    draw_cover(2, np.random.default_rng(7), 96).save(cover)
    tab.locator("#search-upload input[type=file]").set_input_files(str(cover))
    head = tab.locator("#search-head")
    head.get_by_text(HEAD_GENRE).first.wait_for()
    assert "70%" in head.inner_text()
    evidence = tab.locator("#search-evidence")
    neighbours = tab.locator("#search-neighbours")
    first_genre = service.covers[0][1]
    evidence.get_by_text(f"{first_genre} · 0.95").first.wait_for()
    tab.wait_for_function("document.querySelectorAll('#search-neighbours img').length >= 10")
    assert evidence.locator("img").count() == 3
    assert neighbours.locator("img").count() == 10
    assert _all_images_loaded(tab, "#search-neighbours img")
    message = tab.locator("#search-message").inner_text()
    assert HEAD_GENRE in message and VOTE_GENRE in message  # the disagreement note
    assert "Cluster 1" in tab.locator("#search-cluster").inner_text()
    tab.wait_for_function("(document.querySelector('#search-words')?.innerText || '').includes('GREATEST HITS')")
    asked = [name for name, _ in service.calls]
    assert asked[-2:] == ["search", "read_words"]  # the words come in a second update, after the search
    tab.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)


def test_more_covers_adds_a_page(page: tuple[object, FakeService]) -> None:
    tab, service = page
    tab.locator("#search-more").click()
    tab.wait_for_function("document.querySelectorAll('#search-neighbours img').length >= 20")
    assert [c for c in service.calls if c[0] == "search"][-1] == \
        ("search", {"k": 20, "offset": 0, "embedder": "finetuned"})


def test_pick_a_library_cover_instead(page: tuple[object, FakeService]) -> None:
    tab, service = page
    path, genre = service.covers[8]
    tab.locator("#search-pick input").click()
    tab.get_by_role("option", name=f"{genre} · {path}").click()
    tab.wait_for_function("!document.querySelector('#search-upload')?.innerText.includes('my_cover')")
    # the picked cover is searched, not the earlier upload (waiting for any call raced with the
    # upload's own second update, which the fake records too)
    _wait(tab, lambda: service.last_source == service.library / path)
    wait_text(tab, "#search-vote", VOTE_GENRE)
    assert _all_images_loaded(tab, "#search-neighbours img")


def test_clusters_tab_shows_table_map_and_members(page: tuple[object, FakeService]) -> None:
    tab, service = page
    open_tab(tab, "Clusters")
    table = tab.locator("#clusters-table")
    table.get_by_text(sorted({g for _, g in service.covers})[2]).first.wait_for()
    tab.locator("#clusters-map img").wait_for()
    tab.wait_for_function("document.querySelectorAll('#clusters-members img').length >= 6")
    assert "ARI 0.420" in tab.locator("#clusters-summary").inner_text()
    assert _all_images_loaded(tab, "#clusters-map img, #clusters-members img")
    tab.locator("#clusters-mix").get_by_text("Genre mix of the cluster").wait_for()
    tab.screenshot(path=str(SCREENSHOTS / "clusters.png"), full_page=True)


def test_evaluation_tab_shows_table_and_plots(page: tuple[object, FakeService]) -> None:
    tab, _ = page
    open_tab(tab, "Evaluation")
    table = tab.locator("#evaluation-table")
    table.get_by_text(METHOD_NAMES[0]).first.wait_for()
    assert all(name in table.inner_text() for name in METHOD_NAMES)
    tab.locator("#evaluation-f1 img").wait_for()
    tab.wait_for_function("document.querySelectorAll('#evaluation-confusion img').length >= 2")
    assert _all_images_loaded(tab, "#evaluation-f1 img, #evaluation-confusion img")
    assert not tab.locator("#evaluation-run").is_visible()  # an evaluation exists: no Run button
    tab.screenshot(path=str(SCREENSHOTS / "evaluation.png"), full_page=True)


def test_library_and_suspects_tabs(page: tuple[object, FakeService]) -> None:
    tab, service = page
    open_tab(tab, "Library")
    tab.locator("#library-summary").get_by_text("distinct covers").wait_for()
    wait_text(tab, "#library-problems", "not an image (fake)")
    tab.screenshot(path=str(SCREENSHOTS / "library.png"), full_page=True)
    open_tab(tab, "Suspects")
    wait_text(tab, "#suspects-message", "No suspects yet")  # nothing found yet: the tab says how
    tab.locator("#suspects-run").click()  # a background job: the Jobs panel shows it, the tab fills when it ends
    wait_text(tab, "#suspects-message", "searches keep answering")
    wait_text(tab, "#jobs-status", "suspects (finetuned)")
    tab.locator("#suspects-message").get_by_text("2 label suspects").wait_for()
    tab.wait_for_function("document.querySelectorAll('#suspects-evidence img').length >= 4")
    tab.screenshot(path=str(SCREENSHOTS / "suspects.png"), full_page=True)


def test_before_anything_exists_the_tabs_say_what_to_do(browser: object, tmp_path: Path) -> None:
    with app_page(browser, FakeService(tmp_path, ready=False)) as tab:
        tab.locator("#status-header").get_by_text(NEXT_STEP_EMPTY).wait_for()
        assert "unavailable" in tab.locator("#status-header").inner_text()  # the CLIP note
        open_tab(tab, "Clusters")
        tab.locator("#clusters-message").get_by_text("No clusters yet").wait_for()
        tab.locator("#clusters-run").click()
        wait_text(tab, "#clusters-message", "Job")  # started in the background...
        wait_text(tab, "#jobs-status", "run coverlens index first")  # ...it failed: the service's error, shown
        tab.screenshot(path=str(SCREENSHOTS / "empty-clusters.png"), full_page=True)
        open_tab(tab, "Evaluation")
        tab.locator("#evaluation-message").get_by_text("No evaluation yet").wait_for()
        assert tab.locator("#evaluation-run").is_visible()


def wait_text(tab: object, selector: str, text: str) -> None:
    tab.wait_for_function(f"document.querySelector({selector!r})?.innerText.includes({text!r})")


def _wait(tab: object, condition: Callable[[], bool], seconds: float = TIMEOUT_MS / 1000) -> None:
    """Poll a server-side condition (the fake's record of calls) until it holds.

    Waits through playwright, not time.sleep, so the page's events keep being handled meanwhile.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app to call the service"
        tab.wait_for_timeout(50)


def _all_images_loaded(tab: object, selector: str) -> bool:
    """Every matching <img> decoded with a real size (a refused file would show as broken)."""
    tab.wait_for_function(
        f"[...document.querySelectorAll({selector!r})].every(i => i.complete && i.naturalWidth > 0)")
    return True


class BusyService(FakeService):
    """The fake with an index run that reports progress until released, and the words hook."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        import threading

        self.release = threading.Event()

    def index(self, progress: object = None, **kwargs: object) -> object:
        for step in range(3000):
            if self.release.is_set():
                break
            if progress:
                progress(step / 3000, f"index finetuned: {step}/3000")
            time.sleep(0.02)
        return super().index(progress, **kwargs)

    def read_words(self, source: object) -> object:
        return type("Words", (), {"text": "COMPLETE WORKS", "scores": [], "fused": []})()


def test_a_job_runs_while_a_search_answers_and_survives_a_reload(browser: object, tmp_path: Path) -> None:
    service = BusyService(tmp_path)
    with app_page(browser, service) as tab:
        try:
            open_tab(tab, "Library")
            tab.locator("#library-index").click()
            wait_text(tab, "#library-action", "searches keep answering")
            wait_text(tab, "#jobs-status", "index finetuned:")  # the job's progress, polled
            open_tab(tab, "Search")
            cover = tmp_path / "while_indexing.png"
            draw_cover(1, np.random.default_rng(3), 96).save(cover)
            tab.locator("#search-upload input[type=file]").set_input_files(str(cover))
            tab.locator("#search-head").get_by_text(HEAD_GENRE).first.wait_for()
            tab.wait_for_function("document.querySelectorAll('#search-neighbours img').length >= 10")
            assert _all_images_loaded(tab, "#search-neighbours img")
            wait_text(tab, "#search-words", "COMPLETE WORKS")  # the second update
            status = tab.locator("#jobs-status").inner_text()
            assert "running" in status and "index finetuned:" in status  # the job still runs beside the answer
            tab.screenshot(path=str(SCREENSHOTS / "search-while-indexing.png"), full_page=True)
            # thumbnails in the gallery; a click shows the full cover
            assert all(".webp" in src for src in tab.eval_on_selector_all(
                "#search-neighbours img", "imgs => imgs.map(i => i.src)"))
            tab.locator("#search-neighbours img").first.click()
            tab.wait_for_function("document.querySelector('#search-full img')?.src.includes('.jpg')")
            tab.reload()  # the job lives in the server: a new page shows it still running
            tab.get_by_text("cover genres, nearest covers, clusters").wait_for()
            wait_text(tab, "#jobs-status", "running")
            tab.locator("#jobs").get_by_text("All jobs and their logs").click()
            tab.locator("#jobs-cancel").click()
            wait_text(tab, "#jobs-status", "cancelled")
            tab.wait_for_function("document.querySelector('#jobs-log textarea')?.value.includes('cancel requested')")
            tab.screenshot(path=str(SCREENSHOTS / "job-cancelled.png"), full_page=True)
        finally:
            service.release.set()
