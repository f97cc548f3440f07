"""The service's clustering job: the covers' OCR text reaches it from the text stage's store when
there is one (words, text spaces), and nothing breaks where there is none."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from coverlens.clustering import texts as clustering_texts
from coverlens.registry import builtin_registry
from coverlens.service import CoverlensService
from coverlens.workspace import Workspace
from indexing import make_workspace
from test_registry import toy_spec

PLANTED = ["drone", "delta", "rodeo", "boogie"]
HAS_TEXT_STAGE = importlib.util.find_spec("coverlens.text") is not None


class FakeTextStore:
    """What `coverlens.text.stage.text_store_for(root, readonly=True)` gives: a context manager with
    `.texts(ids)` (one text per id, "" where nothing was read)."""

    def __init__(self, by_id: dict[str, str]) -> None:
        self.by_id, self.asked, self.closed = by_id, [], False

    def __enter__(self) -> FakeTextStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def texts(self, ids: list[str]) -> list[str]:
        self.asked.append(list(ids))
        return [self.by_id.get(i, "") for i in ids]


@pytest.fixture
def indexed(tmp_path: Path) -> CoverlensService:
    registry = builtin_registry()
    registry.register_embedder(toy_spec([]))
    service = CoverlensService(make_workspace(tmp_path, genres=4, per_genre=8), registry=registry)
    service.index(embedder="toy")
    yield service
    service.close()


def test_the_service_hands_clustering_the_text_stores_words(indexed: CoverlensService,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    stored = indexed.stored_collection("toy").fetch()
    genres = sorted({str(m["genre"]) for m in stored.metadatas})
    word_of = dict(zip(genres, PLANTED, strict=True))
    by_id = {cover: f"{word_of[str(m['genre'])].upper()} live {n % 3}volume"
             for n, (cover, m) in enumerate(zip(stored.ids, stored.metadatas, strict=True))}
    store = FakeTextStore(by_id)
    monkeypatch.setattr(clustering_texts, "open_text_store", lambda workspace: store)

    job = indexed.run_clusters("toy", space="text", reducer="pca", min_cluster_size=4)
    report = job.report
    assert store.asked == [list(stored.ids)] and store.closed  # read once, for the stored covers, then closed
    assert report.space == "text" and report.no_signal == 0 and report.nmi > 0.9
    assert {c.dominant_genre: c.words[0] for c in report.clusters} == word_of  # c-TF-IDF over the real text
    assert json.loads(job.report_json.read_text())["params"]["store_complete"] is True
    assert indexed.clusters("toy").clusters[0].words == report.clusters[0].words

    auto = indexed.run_clusters("toy", reducer="pca", min_cluster_size=4).report
    assert auto.space == "image+text"  # auto: every cover has text


def test_without_text_the_clusters_form_in_the_image_space(indexed: CoverlensService) -> None:
    assert clustering_texts.workspace_texts(indexed.workspace, ["a"]) is None  # no text store here
    report = indexed.run_clusters("toy", reducer="pca", min_cluster_size=4).report
    assert report.space == "image" and not any(c.words for c in report.clusters)


def test_a_text_store_is_read_only_where_the_text_stage_exists(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    db = clustering_texts.text_db(workspace)
    if not HAS_TEXT_STAGE:
        db.parent.mkdir(parents=True)
        db.write_bytes(b"")  # a database this build cannot read: skipped, not an error
        assert clustering_texts.open_text_store(workspace) is None
        assert clustering_texts.workspace_texts(workspace, ["a"]) is None
        return
    from coverlens.text.stage import text_store_for
    from coverlens.text.store import CoverText

    with text_store_for(workspace.root) as store:
        store.put([CoverText("a", "test", [], "NIGHT JAZZ"), CoverText("b", "test", [], "")])
    assert clustering_texts.workspace_texts(workspace, ["a", "b", "c"]) == {"a": "NIGHT JAZZ"}
