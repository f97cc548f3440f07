"""The service wires the real pieces: catalog, tiny trained model, embedded Chroma, clusters, suspects."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverlens.errors import ImageError, WeightsError, WorkspaceError
from coverlens.registry import REGISTRY, BuildContext, replace
from coverlens.service import CoverlensService
from coverlens.workspace import Workspace

NO_CLIP = "CLIP comparator unavailable: no CLIP weights in this test"


def no_clip(ctx: BuildContext) -> None:
    raise WeightsError(NO_CLIP)


NO_CLIP_REGISTRY = REGISTRY.with_embedder(replace(REGISTRY.embedder("clip"), build=no_clip,
                                                  check=lambda ctx: NO_CLIP))


def service_for(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> CoverlensService:
    return CoverlensService(workspace, registry=NO_CLIP_REGISTRY)


def test_empty_workspace_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = service_for(Workspace(tmp_path / "nothing"), monkeypatch)
    status = service.status()
    assert status.catalogued == 0 and not status.has_model and status.indexed == {}
    assert "coverlens catalog" in status.next_step
    assert "no CLIP weights in this test" in status.embedders["clip"].note
    assert service.library_covers() == [] and service.clusters() is None and service.evaluation() is None


def test_search_before_indexing_gives_head_and_a_note(copied_workspace: Workspace,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    service = service_for(copied_workspace, monkeypatch)
    assert "coverlens index" in service.status().next_step
    relpath, _genre = service.library_covers()[0]
    result = service.search(service.cover_path(relpath))
    assert len(result.head) == 3 and abs(sum(s.score for s in result.head) - 1.0) < 1e-4
    assert result.neighbours == [] and result.vote is None
    assert any("index" in note for note in result.notes)


def test_search_while_another_command_writes_says_so(copied_workspace: Workspace,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Mid-rebuild the store is empty or being dropped: the note says it is being written and to
    search again, not that nothing was ever indexed."""
    from coverlens.locks import workspace_writer

    service = service_for(copied_workspace, monkeypatch)
    query = service.cover_path(service.library_covers()[0][0])
    with workspace_writer(copied_workspace, "index --rebuild"):
        during = service.search(query)
    after = service.search(query)
    written = [n for n in during.notes if "being written" in n]
    assert len(written) == 1 and "index --rebuild, pid" in written[0] and "search again" in written[0]
    assert not any("being written" in n for n in after.notes)
    underlying = [n for n in after.notes if "coverlens index" in n]  # no store yet: said alone once nobody writes
    assert len(underlying) == 1 and written[0].endswith(f"({underlying[0]})")


def test_index_search_clusters_suspects(copied_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    service = service_for(copied_workspace, monkeypatch)
    summary = service.index().summary()
    assert "covers-finetuned: 36 covers (+36 embedded" in summary and "no CLIP weights" in summary
    assert service.status().indexed == {"finetuned": 36}

    relpath, _genre = service.library_covers()[0]
    query = service.cover_path(relpath)
    first = service.search(query, k=5)
    assert first.query_id is not None and len(first.neighbours) == 5
    assert first.query_id not in {hit.id for hit in first.neighbours}  # the query itself is left out
    sims = [hit.similarity for hit in first.neighbours]
    assert all(a >= b - 1e-5 for a, b in zip(sims, sims[1:], strict=False))  # best first (up to float noise)
    assert first.vote is not None and first.vote.evidence
    assert all(hit.split == "train" for hit in first.vote.evidence)
    assert first.agree == (first.head[0].genre == first.vote.genre)
    page2 = service.search(query, k=5, offset=5)
    assert not {h.id for h in page2.neighbours} & {h.id for h in first.neighbours}
    assert service.search(query.read_bytes(), k=5).neighbours == first.neighbours

    job = service.run_clusters(min_cluster_size=5, reducer="pca")  # the UMAP recipe: test_clusters_umap
    report = job.report
    assert job.map_png.exists() and job.report_json.exists() and job.labels_csv.exists()
    assert report.n_covers == 36 and service.cluster_map_path() is not None
    placed = service.search(query, k=3).cluster
    assert placed is not None and (placed.cluster_id == -1 or placed.dominant_genre)
    if report.clusters:
        members = service.cluster_members(report.clusters[0].cluster_id)
        assert len(members) == report.clusters[0].size or len(members) == 48

    suspects = service.suspects(k=5, min_share=0.0, threshold=0.5)
    assert suspects.markdown is not None and suspects.markdown.exists()
    assert isinstance(suspects.label_suspects, list) and isinstance(suspects.near_duplicates, list)
    service.close()


def test_bad_uploads_and_paths(copied_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    service = service_for(copied_workspace, monkeypatch)
    with pytest.raises(ImageError, match="not an image"):
        service.search(b"definitely not an image")
    with pytest.raises(WorkspaceError, match="outside the library"):
        service.cover_path("../../etc/passwd")


def test_predict_shows_the_vote_beside_the_head(copied_workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from coverlens.cli import common, main

    monkeypatch.setattr(common, "SERVICE_FACTORY",
                        lambda ws, **kw: CoverlensService(ws, registry=NO_CLIP_REGISTRY, **kw))
    service = CoverlensService(copied_workspace, registry=NO_CLIP_REGISTRY)
    query = service.cover_path(service.library_covers()[0][0])
    assert main(["predict", str(query), "--json", "-w", str(copied_workspace.root)]) == 0
    [before] = json.loads(capsys.readouterr().out)
    assert before["genre"] and before["vote"] is None  # not indexed yet: the head alone

    service.index()
    service.close()
    assert main(["predict", str(query), "--json", "--vote-k", "4", "-w", str(copied_workspace.root)]) == 0
    [after] = json.loads(capsys.readouterr().out)
    assert after["scores"] == before["scores"]
    vote = after["vote"]
    assert len(vote["evidence"]) == 4 and vote["genre"] in {s["genre"] for s in vote["scores"]}
    assert after["agree"] == (vote["genre"] == after["genre"])
    assert main(["predict", str(query), "-w", str(copied_workspace.root)]) == 0
    assert "KNN vote" in capsys.readouterr().out
