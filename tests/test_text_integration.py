"""The words on the covers through the CLI and the service: `index` reads them (also before any model
exists), `train` fits the text model and the fusion weights right after the fastai model, `find`
ranks covers by their words, `predict`/`search` show head, text model, fused prediction and vote with
the words as evidence, `evaluate` has the text and fused rows and the text coverage, `--no-text`
reads nothing.

One generated library of covers with words drawn on them (a genre word on every cover of a genre,
and a word of its own on each), a tiny random-init classifier; real OCR (RapidOCR) reads them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cli_calls import cli, exit_code
from coverlens.cli import common
from coverlens.registry import REGISTRY, Registry
from coverlens.service import CoverlensService
from coverlens.text.store import text_db_path
from coverlens.workspace import Workspace
from text_covers import word_cover

GENRE_WORDS = {"rock": "GUITAR", "jazz": "SAXOPHONE", "pop": "DANCE"}
OWN_WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL", "INDIA", "JULIET",
             "KILO", "LIMA", "MIKE", "NOVEMBER", "OSCAR", "PAPA", "QUEBEC", "ZEPHYR"]
PER_GENRE = 6
TINY = ["--size", "32", "--epochs", "1", "--frozen-epochs", "0", "--batch-size", "8", "--no-pretrained", "--quiet"]


def registry_without_downloads() -> Registry:
    """The built-in signals and the fine-tuned embedder only: no ImageNet or CLIP weights to fetch."""
    return Registry(embedders=[REGISTRY.embedder("finetuned")], signals=REGISTRY.signals())


@pytest.fixture(autouse=True)
def offline_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = registry_without_downloads()
    monkeypatch.setattr(common, "SERVICE_FACTORY", lambda ws, **kw: CoverlensService(ws, registry=registry, **kw))


def make_word_library(root: Path) -> dict[str, Path]:
    """genre folders of 160 px covers: the genre's word and a word of the cover's own; own word -> file."""
    files, words = {}, iter(OWN_WORDS)
    for index, (genre, word) in enumerate(GENRE_WORDS.items()):
        (root / genre).mkdir(parents=True)
        for n in range(PER_GENRE):
            own = next(words)
            path = root / genre / f"{own.lower()}.jpg"
            word_cover([word, own], size=160, background=(30 + 40 * index, 20 + 9 * n, 90)).save(path, quality=95)
            files[own] = path
    return files


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """catalog -> index (no model yet: text only) -> train (fastai, then text) -> index (vectors)."""
    root = tmp_path_factory.mktemp("words")
    files = make_word_library(root / "library")
    workspace = Workspace(root / "ws")
    registry = registry_without_downloads()
    common.SERVICE_FACTORY = lambda ws, **kw: CoverlensService(ws, registry=registry, **kw)
    steps: dict[str, Any] = {}
    try:
        for name, argv in (("catalog", ["catalog", str(root / "library")]), ("index_text", ["index", "--text"]),
                           ("train", ["train", *TINY]), ("index", ["index", "--text"])):
            assert exit_code([*argv, "-w", str(workspace.root)]) == 0, f"{name} failed"
            if name == "index_text":
                steps["text_after_first_index"] = text_db_path(workspace.root).exists()
    finally:
        common.SERVICE_FACTORY = None
    return {"workspace": workspace, "files": files, "root": root, **steps}


def test_index_on_a_fresh_library_reads_every_cover_before_any_model(built: dict[str, Any]) -> None:
    from coverlens.text.stage import text_store_for

    assert built["text_after_first_index"]
    with text_store_for(built["workspace"].root, readonly=True) as store:
        assert store.count() == len(OWN_WORDS)
        texts = store.texts(store.readers())
    squeezed = ["".join(t.upper().split()) for t in texts]
    assert sum(any(w in t for w in GENRE_WORDS.values()) for t in squeezed) >= len(OWN_WORDS) - 2


def test_train_wrote_the_text_model_and_fusion_weights_beside_the_fastai_model(built: dict[str, Any]) -> None:
    model_dir = built["workspace"].model_dir
    for name in ("model.pkl", "text_model.joblib", "text_model.json", "fusion.json"):
        assert (model_dir / name).exists(), name
    fusion = json.loads((model_dir / "fusion.json").read_text())
    sidecar = json.loads((model_dir / "text_model.json").read_text())
    head = json.loads((model_dir / "model.json").read_text())
    assert fusion["text_model_sha256"] == sidecar["model_sha256"]
    assert sidecar["trained_on"]["head_model_sha256"] == head["model_sha256"]
    assert fusion["classes"] == head["classes"]


def test_find_ranks_the_cover_carrying_the_word_first(built: dict[str, Any], capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    ws = str(built["workspace"].root)
    code, out, _ = cli(capsys, "find", "zephyr", "--json", "-w", ws)
    assert code == 0
    found = json.loads(out)
    assert found and Path(found[0]["file"]) == built["files"]["ZEPHYR"]
    assert "[" in found[0]["matched"] and found[0]["genre"] == "pop"
    code, out, _ = cli(capsys, "find", "SAXOPHONE", "-k", "2", "--offset", "1", "-w", ws)
    header, *rows = out.splitlines()
    assert code == 0 and "matched text" in header and len(rows) == 2
    assert all(row.split()[0] in ("2", "3") and row.split()[2] == "jazz" and "[SAXOPHONE]" in row for row in rows)
    code, out, _ = cli(capsys, "find", "saxophone", "--json", "-k", "10", "-w", ws)
    assert [row["genre"] for row in json.loads(out)][:PER_GENRE - 1] == ["jazz"] * (PER_GENRE - 1)


def test_predict_json_shows_head_text_fused_vote_and_the_words(built: dict[str, Any],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    cover = built["files"]["BRAVO"]  # a rock cover of the library: its stored words are used
    code, out, _ = cli(capsys, "predict", str(cover), "--json", "-w", str(built["workspace"].root))
    assert code == 0
    row = json.loads(out)[0]
    assert row["head"] and row["head"] == row["scores"]
    assert row["words_from"] == "stored" and "GUITAR" in "".join(row["words"]).upper()
    assert row["text_model"][0]["genre"] == "rock"  # the genre word decides the text model
    assert row["fused"] and {s["genre"] for s in row["fused"]} <= set(GENRE_WORDS)
    assert set(row["fusion_weights"]) >= {"head", "text"}
    assert row["vote"] is not None and row["vote"]["evidence"]
    code, out, _ = cli(capsys, "predict", str(cover), "-w", str(built["workspace"].root))
    assert code == 0 and "text model: rock" in out and "GUITAR" in out.upper()


def test_a_cover_without_words_falls_back_to_the_head(built: dict[str, Any], tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (160, 160), (40, 40, 40)).save(blank)
    service = CoverlensService(built["workspace"], registry=registry_without_downloads())
    try:
        result = service.search(blank)
        evidence = service.read_words(blank)
    finally:
        service.close()
    assert result.head and result.text is not None
    assert result.text.origin == "read" and result.text.words == [] and not result.text.scores
    assert [s.genre for s in result.text.fused] == [s.genre for s in result.head[:len(result.text.fused)]]
    assert evidence.fused == result.text.fused and any("head's alone" in n for n in evidence.notes)


def test_an_uploaded_cover_is_read_by_ocr(built: dict[str, Any]) -> None:
    import io

    data = io.BytesIO()
    word_cover(["SAXOPHONE", "NEWWORD"], size=160).save(data, format="PNG")
    service = CoverlensService(built["workspace"], registry=registry_without_downloads())
    try:
        evidence = service.read_words(data.getvalue())
    finally:
        service.close()
    assert evidence.origin == "read" and "SAXOPHONE" in "".join(evidence.words).upper()
    assert evidence.scores and evidence.scores[0].genre == "jazz" and "SAXOPHONE" in evidence.text.upper()


def test_evaluate_has_the_text_and_fused_rows_and_the_text_coverage(built: dict[str, Any],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    workspace = built["workspace"]
    code, out, _ = cli(capsys, "evaluate", "-w", str(workspace.root))
    assert code == 0
    report = json.loads((workspace.reports_dir / "evaluation.json").read_text())
    rows = {r["slug"]: r for r in report["results"]}
    assert rows["text"]["metrics"] is not None and rows["fused"]["metrics"] is not None
    assert rows["text"]["metrics"]["accuracy"] >= 0.75  # the genre word is on every test cover
    coverage = report["text_coverage"]
    assert set(coverage) == {*GENRE_WORDS, "all"} and coverage["all"]["covers"] == report["n_test"]
    assert coverage["all"]["unread"] == 0 and coverage["all"]["share"] >= 0.75
    markdown = (workspace.reports_dir / "evaluation.md").read_text()
    assert "text model (OCR words)" in markdown and "## Text coverage" in markdown
    assert "fused: head + text model" in out and "text coverage" in out


def test_no_text_leaves_no_text_store(built: dict[str, Any], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ws"
    shutil.copytree(built["workspace"].root, target, ignore=shutil.ignore_patterns("store", "text", "reports"))
    code, _, err = cli(capsys, "index", "--no-text", "-w", str(target))
    assert code == 0 and not text_db_path(target).exists() and "text:" not in err
    assert (target / "store").is_dir()
    code, out, _ = cli(capsys, "train", "--text-only", "-w", str(target))
    assert code == 0 and "text model skipped: no text store" in out


def test_covers_gone_from_the_catalog_are_pruned_from_the_text_store(built: dict[str, Any], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from coverlens.text.stage import text_store_for

    library = tmp_path / "library"
    shutil.copytree(built["root"] / "library", library)
    target = tmp_path / "ws"
    shutil.copytree(built["workspace"].root, target, ignore=shutil.ignore_patterns("store", "reports"))
    assert cli(capsys, "catalog", str(library), "-w", str(target))[0] == 0
    (library / "pop" / "zephyr.jpg").unlink()
    code, _, err = cli(capsys, "index", "--text", "-w", str(target))
    assert code == 0 and f"{len(OWN_WORDS) - 1} already stored" in err  # nothing read twice
    with text_store_for(target, readonly=True) as store:
        assert store.count() == len(OWN_WORDS) - 1
    code, out, _ = cli(capsys, "find", "zephyr", "--json", "-w", str(target))
    assert all(Path(row["file"]).name != "zephyr.jpg" for row in json.loads(out))
