"""The Clusters tab of the real app (CoverlensService, not the fake) in headless Chromium: a generated
library whose covers carry words in the text stage's own store; the tab shows each cluster's words
and, for a chosen cluster, its genre mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coverlens.registry import builtin_registry
from coverlens.service import CoverlensService
from indexing import make_workspace
from test_registry import toy_spec
from test_ui_browser import SCREENSHOTS, app_page, browser, open_tab, wait_text  # noqa: F401 - fixture

pytestmark = pytest.mark.browser
pytest.importorskip("coverlens.text.stage")

# one word per genre, except that two genres share the first: their covers form one cluster of two genres
PLANTED = ["crossroads", "crossroads", "sonata", "rodeo"]


@pytest.fixture
def clustered(tmp_path: Path) -> Iterator[tuple[CoverlensService, dict[str, str]]]:
    """Real service over a generated, indexed library with words stored for every cover, clustered
    in the text space (PCA: no UMAP compile in a UI test)."""
    from coverlens.text.stage import text_store_for
    from coverlens.text.store import CoverText

    registry = builtin_registry()
    registry.register_embedder(toy_spec([]))
    service = CoverlensService(make_workspace(tmp_path, genres=4, per_genre=8), registry=registry)
    try:
        service.index(embedder="toy")
        stored = service.stored_collection("toy").fetch()
        genres = sorted({str(m["genre"]) for m in stored.metadatas})
        word_of = dict(zip(genres, PLANTED, strict=True))
        with text_store_for(service.workspace.root) as store:
            store.put([CoverText(cover, "test", [], f"{word_of[str(m['genre'])].upper()} vol {n % 3}")
                       for n, (cover, m) in enumerate(zip(stored.ids, stored.metadatas, strict=True))])
        report = service.run_clusters("toy", space="text", reducer="pca", min_cluster_size=4).report
        assert report.clusters and all(c.words for c in report.clusters)
        yield service, word_of
    finally:
        service.close()


def test_clusters_tab_shows_words_and_genre_mix_of_the_real_service(
        browser: object, clustered: tuple[CoverlensService, dict[str, str]]) -> None:  # noqa: F811 - the fixture
    service, word_of = clustered
    report = service.clusters("toy")
    with app_page(browser, service) as tab:
        open_tab(tab, "Clusters")
        # the tab opens on the default embedding (nothing clustered there): wait for that view, so it
        # cannot land after the toy one and replace it
        wait_text(tab, "#clusters-message", "No clusters yet")
        tab.locator("input[type=radio][value=toy]:visible").check()  # the embedding indexed and clustered
        for cluster in report.clusters:  # each cluster's own words, as c-TF-IDF found them in the store
            wait_text(tab, "#clusters-table", cluster.words[0])
        shown = tab.locator("#clusters-table").inner_text()
        assert all(word in shown for word in word_of.values())
        for cluster in report.clusters:  # the genre mix column, counts and all
            assert ", ".join(f"{g} {n}" for g, n in list(cluster.genre_mix.items())[:3]) in shown
        mixed = next(c for c in report.clusters if len(c.genre_mix) == 2)  # two genres share a word
        assert mixed.words[0] == PLANTED[0]
        wait_text(tab, "#clusters-summary", f"NMI {report.nmi:.3f}")
        # the chosen cluster's title carries its words, and its genre mix plot names both its genres
        tab.locator("#clusters-choice input").click()
        tab.get_by_role("option", name=f"{mixed.cluster_id}: {mixed.title()} ({mixed.size} covers)").click()
        tab.locator("#clusters-mix").get_by_text("Genre mix of the cluster").wait_for()
        for genre in mixed.genre_mix:
            tab.wait_for_function(f"(document.querySelector('#clusters-mix')?.textContent || '').includes({genre!r})")
        assert PLANTED[0] in tab.locator("#clusters-choice input").input_value()
        tab.screenshot(path=str(SCREENSHOTS / "clusters-real-words.png"), full_page=True)
