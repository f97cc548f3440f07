"""The saved clustering is read as a pair: a reader never returns a new labels file with an old
report (or the reverse) while `coverlens clusters` replaces them."""

from __future__ import annotations

import threading

import numpy as np

from coverlens.clustering.files import ClusterFiles, load_clusters, save_clusters
from coverlens.clustering.fit import AS_NOISE, BY_CLUSTERER, ClusterModel
from coverlens.clustering.report import ClusterReport, ClusterSummary
from coverlens.workspace import Workspace


def clustering(n: int, clusters: int) -> tuple[ClusterReport, ClusterModel]:
    """n covers in `clusters` clusters (cover i in cluster i % clusters), the last cover noise."""
    labels = np.array([i % clusters for i in range(n - 1)] + [-1])
    ids = [f"c{n}-{i}" for i in range(n)]
    summaries = [ClusterSummary(c, int((labels == c).sum()), "g", 1.0, {"g": int((labels == c).sum())}, [], [])
                 for c in range(clusters)]
    report = ClusterReport("fake", n, summaries, 1 / n, 0.0, 0.0)
    model = ClusterModel("fake", ids, labels, np.ones(n, dtype=np.float32),
                         [BY_CLUSTERER] * (n - 1) + [AS_NOISE])
    return report, model


def test_a_reader_never_pairs_a_new_model_with_an_old_report(tmp_path) -> None:
    workspace = Workspace(tmp_path / "ws")
    pairs = [clustering(300, 3), clustering(500, 7)]
    save_clusters(workspace, *pairs[0])
    stop, seen, bad = threading.Event(), set(), []

    def writer() -> None:
        for round_ in range(150):
            save_clusters(workspace, *pairs[round_ % 2])
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not stop.is_set():
        report, model = load_clusters(workspace, "fake")
        seen.add(report.n_covers)
        sizes = [c.size for c in report.clusters]
        counted = [int((model.labels == c.cluster_id).sum()) for c in report.clusters]
        if report.n_covers != len(model.ids) or sizes != counted or not model.ids[0].startswith(f"c{report.n_covers}-"):
            bad.append((report.n_covers, len(model.ids)))
    thread.join()
    assert not bad
    assert seen == {300, 500}  # both clusterings were read while the writer swapped them


def test_an_old_report_without_the_labels_digest_still_loads(tmp_path) -> None:
    import json

    workspace = Workspace(tmp_path / "ws")
    report, model = clustering(50, 2)
    files = save_clusters(workspace, report, model)
    data = json.loads(files.report.read_text())
    del data["labels_sha256"]  # written before the digest existed
    files.report.write_text(json.dumps(data))
    loaded = load_clusters(workspace, "fake")
    assert loaded is not None and loaded[1].ids == model.ids and files == ClusterFiles.of(workspace, "fake")
