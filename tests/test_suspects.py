"""Tests for coverlens.search.suspects, suspects_report and `coverlens suspects`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coverlens.catalog import distinct_covers, library_root, load_catalog, run_catalog
from coverlens.cli import main
from coverlens.search import suspects as suspects_module
from coverlens.search.suspects import find_label_suspects, find_near_duplicates
from coverlens.search.suspects_report import suspects_markdown, write_suspects_report
from coverlens.workspace import Workspace
from fakes import FakeCollection, FakeStore, install_fake_store

GENRES = ["folk", "metal", "soul"]


def clean_set(per: int = 30, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """3 separated genre blobs: nothing mislabelled, no two covers nearly the same."""
    rng = np.random.default_rng(seed)
    vectors = np.concatenate([np.eye(dim)[g] + rng.normal(scale=0.5 / np.sqrt(dim), size=(per, dim))
                              for g in range(len(GENRES))]).astype(np.float32)
    genres = [g for g in GENRES for _ in range(per)]
    ids = [f"id{i:03d}" for i in range(len(vectors))]
    return vectors, genres, ids, [f"{g}/{i}.jpg" for i, g in enumerate(genres)]


def test_clean_set_yields_nothing() -> None:
    vectors, genres, ids, paths = clean_set()
    assert find_label_suspects(vectors, ids, genres, paths) == []
    assert find_near_duplicates(vectors, ids, genres, paths) == []


def test_planted_mislabel_is_found() -> None:
    vectors, genres, ids, paths = clean_set()
    genres[5] = "soul"  # a folk cover filed under soul
    found = find_label_suspects(vectors, ids, genres, paths, k=10, min_share=0.7,
                                splits=["train"] * len(ids))
    assert [s.id for s in found] == ["id005"]
    suspect = found[0]
    assert suspect.genre == "soul" and suspect.voted_genre == "folk" and suspect.vote_share == pytest.approx(1.0)
    assert suspect.path == paths[5]
    assert len(suspect.evidence) == 10 and "id005" not in {h.id for h in suspect.evidence}
    sims = [h.similarity for h in suspect.evidence]
    assert sims == sorted(sims, reverse=True) and {h.split for h in suspect.evidence} == {"train"}


def test_min_share_and_several_genres_filed() -> None:
    vectors, genres, ids, paths = clean_set()
    genres[5] = "soul"
    assert find_label_suspects(vectors, ids, genres, paths, min_share=1.01) == []
    filed = list(genres)
    filed[5] = "folk|soul"  # filed under both: folk neighbours are no evidence of a mistake
    assert find_label_suspects(vectors, ids, genres, paths, filed_genres=filed) == []


def test_planted_near_duplicate_is_found() -> None:
    vectors, genres, ids, paths = clean_set()
    rng = np.random.default_rng(4)
    twin = vectors[40] + rng.normal(scale=0.01 / np.sqrt(32), size=32)
    vectors = np.concatenate([vectors, twin[None].astype(np.float32)])
    ids, genres, paths = ids + ["twin"], genres + ["folk"], paths + ["folk/twin.jpg"]
    pairs = find_near_duplicates(vectors, ids, genres, paths, threshold=0.97)
    assert len(pairs) == 1
    pair = pairs[0]
    assert (pair.a_id, pair.b_id) == ("id040", "twin") and pair.similarity > 0.99
    assert pair.a_genre == "metal" and pair.cross_genre


def summary(found: list, pairs: list) -> tuple[list, list]:
    return ([(s.id, s.voted_genre, round(s.vote_share, 3), [h.id for h in s.evidence]) for s in found],
            [(p.a_id, p.b_id, round(p.similarity, 4)) for p in pairs])


def test_chunking_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors, genres, ids, paths = clean_set(per=20)
    genres[3], genres[47] = "metal", "folk"
    vectors[10] = vectors[11]  # an exact duplicate
    whole = (find_label_suspects(vectors, ids, genres, paths, k=5),
             find_near_duplicates(vectors, ids, genres, paths, threshold=0.9))
    monkeypatch.setattr(suspects_module, "CHUNK_CELLS", 7 * len(ids))  # 7 rows a chunk
    chunked = (find_label_suspects(vectors, ids, genres, paths, k=5),
               find_near_duplicates(vectors, ids, genres, paths, threshold=0.9))
    assert summary(*chunked) == summary(*whole)  # equal up to float rounding of the chunked products
    assert {s.id for s in whole[0]} == {"id003", "id047"}
    assert ("id010", "id011") in {(p.a_id, p.b_id) for p in whole[1]}


def test_pairs_are_capped_at_the_most_similar() -> None:
    vectors, genres, ids, paths = clean_set(per=10)
    everything = find_near_duplicates(vectors, ids, genres, paths, threshold=-1.0)
    assert len(everything) == 30 * 29 // 2
    capped = find_near_duplicates(vectors, ids, genres, paths, threshold=-1.0, max_pairs=7)
    assert capped == everything[:7]
    assert all(p.a_id < p.b_id for p in everything)


def test_report_files(tmp_path: Path) -> None:
    vectors, genres, ids, paths = clean_set()
    genres[5] = "soul"
    vectors[20] = vectors[21]
    found = find_label_suspects(vectors, ids, genres, paths)
    pairs = find_near_duplicates(vectors, ids, genres, paths)
    params = {"embedder": "clip", "k": 10}
    markdown, data = write_suspects_report(tmp_path, "clip", found, pairs, params,
                                           show_path=lambda rel: f"/lib/{rel}")
    assert markdown.name == "suspects-clip.md" and data.name == "suspects-clip.json"
    text = markdown.read_text()
    assert "`/lib/folk/5.jpg` | soul | folk | 100%" in text and "/lib/folk/20.jpg" in text
    loaded = json.loads(data.read_text())
    assert loaded["label_suspects"][0]["id"] == "id005" and len(loaded["label_suspects"][0]["evidence"]) == 10
    assert loaded["near_duplicates"][0]["cross_genre"] is False
    assert "none" in suspects_markdown([], [], params)


def test_cli_suspects(small_library: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    run_catalog(workspace, small_library)
    covers = distinct_covers(load_catalog(workspace))
    names = sorted(set(covers["genre"]))
    rng = np.random.default_rng(0)
    dim = 16
    vectors = np.array([np.eye(dim)[names.index(g)] + rng.normal(scale=0.05, size=dim) for g in covers["genre"]])
    planted = int(np.flatnonzero(covers["genre"] == names[0])[0])
    vectors[planted] = np.eye(dim)[1]  # looks like the second genre, filed under the first
    metas = covers[["path", "genre", "genres", "split", "width", "height"]].to_dict("records")
    install_fake_store(monkeypatch, FakeStore(FakeCollection(list(covers["id"]), vectors.astype(np.float32), metas)))
    assert main(["suspects", "--k", "5", "-w", str(workspace.root)]) == 0
    out = capsys.readouterr().out
    root = library_root(workspace)
    assert "1 covers whose 5 nearest" in out and str(root / covers["path"][planted]) in out
    assert "0 near-duplicate pairs" in out
    assert (workspace.reports_dir / "suspects-finetuned.md").exists()
    assert main(["suspects", "--json", "--limit", "1", "-w", str(workspace.root)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["label_suspects"][0]["voted_genre"] == names[1]
