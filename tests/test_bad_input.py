"""One corpus of bad and unusual inputs (tests/bad_images.py), four entry points: catalog, predict, similar, app.

Every refused file must get a message that names it and says why; every odd but valid file must be
handled as a normal cover; and none of it may cost a stored vector, a catalog row or a model file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bad_images import CORPUS, Case, make_unreadable
from coverlens.catalog import distinct_covers, load_catalog
from coverlens.cli import main
from coverlens.errors import ImageError, ManifestError
from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace

gradio_client = pytest.importorskip("gradio_client")

pytestmark = pytest.mark.reliability

CASES = pytest.mark.parametrize("case", CORPUS, ids=[case.kind for case in CORPUS])
GENRES = ("ambient", "country")  # the first two genres make_sample_library draws
PER_GENRE = 3
K = 3


def place(case: Case, folder: Path, monkeypatch: pytest.MonkeyPatch, *, chmod: bool = True) -> Path:
    """Write the case's file into folder, unreadable when the case says so."""
    path = case.write(folder)
    if case.locked:
        make_unreadable(path, monkeypatch, chmod=chmod)
    return path


# --- catalog ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 genres x 3 small covers; each test catalogs its own copy."""
    root = tmp_path_factory.mktemp("base") / "library"
    make_sample_library(root, genres=len(GENRES), per_genre=PER_GENRE, size=32, seed=11)
    return root


@pytest.fixture
def library(base_library: Path, tmp_path: Path) -> Path:
    target = tmp_path / "library"
    shutil.copytree(base_library, target)
    return target


def catalog_cli(library: Path | None, workspace: Path, capsys: pytest.CaptureFixture[str],
                *extra: str) -> tuple[int, str, str]:
    """`coverlens catalog` as a person runs it: exit code, stdout, stderr."""
    args = ["catalog", *([str(library)] if library else []), "-w", str(workspace), *extra]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def inspect_cli(workspace: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["inspect", "-w", str(workspace)]) == 0
    return capsys.readouterr().out


@CASES
def test_catalog(case: Case, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
    """The file gets its own catalog row (unreadable with its reason, or ok with its facts); the rest is catalogued."""
    place(case, library / GENRES[0], monkeypatch)
    workspace = tmp_path / "ws"
    code, out, err = catalog_cli(library, workspace, capsys)
    assert code == 0, err
    total = len(GENRES) * PER_GENRE + 1
    frame = load_catalog(Workspace(workspace)).set_index("path")
    relpath = f"{GENRES[0]}/{case.filename}"
    row, others = frame.loc[relpath], frame.drop(index=relpath)
    assert len(frame) == total and len(others) == total - 1 and (others["status"] == "ok").all()
    if case.refused:
        assert f"catalogued {total} files ({total - 1} distinct, 1 unreadable)" in out
        assert row["status"] == "unreadable" and case.refused in row["reason"] and row["split"] == ""
        shown = inspect_cli(workspace, capsys)
        assert f"unreadable: {relpath}: {row['reason']}" in shown and case.refused in shown
    else:
        assert f"catalogued {total} files ({total} distinct, 0 unreadable)" in out
        assert row["status"] == "ok" and row["reason"] == "" and row["split"] in ("train", "test")
        assert (row["width"], row["height"]) == case.size
        assert (row["mode"], row["frames"]) == (case.mode, case.frames)


def test_catalog_walks_a_symlink_loop_once(library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A link back to the library root inside a genre folder must not catalog the library twice (or forever)."""
    (library / GENRES[0] / "back-to-root").symlink_to(library, target_is_directory=True)
    (library / GENRES[1] / "nested").mkdir()
    (library / GENRES[1] / "nested" / "up").symlink_to("..", target_is_directory=True)
    code, out, err = catalog_cli(library, tmp_path / "ws", capsys)
    assert code == 0, err
    total = len(GENRES) * PER_GENRE
    assert f"catalogued {total} files ({total} distinct, 0 unreadable) in {len(GENRES)} genres" in out
    paths = list(load_catalog(Workspace(tmp_path / "ws"))["path"])
    assert sorted(paths) == sorted(p.relative_to(library).as_posix() for p in library.glob("*/*.jpg"))


def test_catalog_names_a_cover_that_is_a_symlink_loop(library: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`cycle.jpg -> cycle.jpg` cannot be read (ELOOP); a person must learn which file that is."""
    (library / GENRES[0] / "cycle.jpg").symlink_to("cycle.jpg")
    code, out, err = catalog_cli(library, tmp_path / "ws", capsys)
    assert code == 0, err
    assert "1 unreadable" in out
    shown = inspect_cli(tmp_path / "ws", capsys)
    assert f"unreadable: {GENRES[0]}/cycle.jpg:" in shown and "symbolic links" in shown


def test_catalog_leaves_out_an_empty_genre_folder(library: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An empty genre folder (or one with only system files) is not a genre: no rows, no class, no crash."""
    (library / "forgotten").mkdir()
    (library / "junk-only").mkdir()
    (library / "junk-only" / ".DS_Store").write_bytes(b"junk")
    code, out, err = catalog_cli(library, tmp_path / "ws", capsys)
    assert code == 0, err
    assert f"in {len(GENRES)} genres" in out
    frame = load_catalog(Workspace(tmp_path / "ws"))
    assert set(frame["genre"]) == set(GENRES) and len(frame) == len(GENRES) * PER_GENRE
    shown = inspect_cli(tmp_path / "ws", capsys)
    assert all(genre in shown for genre in GENRES)
    assert "junk-only" not in shown


def test_catalog_names_an_empty_genre_folder(library: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A genre folder left empty is usually a copy that went wrong: a person must be told which one."""
    (library / "forgotten").mkdir()
    code, out, err = catalog_cli(library, tmp_path / "ws", capsys)
    assert code == 0, err
    assert "genre folders without covers, left out: forgotten" in out


def test_catalog_manifest_with_missing_files_and_duplicate_rows(library: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI: exit code 4, every bad row with its number and file, and the previous catalog kept."""
    workspace = tmp_path / "ws"
    assert catalog_cli(library, workspace, capsys)[0] == 0
    before = {name: (workspace / name).read_bytes() for name in ("catalog.csv", "library.json")}
    first, second = sorted(p.relative_to(library).as_posix() for p in library.glob(f"{GENRES[0]}/*.jpg"))[:2]
    manifest = tmp_path / "labels.csv"
    manifest.write_text(
        f"path,genre\n{first},{GENRES[0]}\n{GENRES[0]}/missing.jpg,{GENRES[0]}\n{first},{GENRES[0]}\n"
        f"./{first},{GENRES[1]}\n{second},{GENRES[0]}\n", encoding="utf-8")
    code, out, err = catalog_cli(library, workspace, capsys, "--manifest", str(manifest))
    assert code == ManifestError.exit_code and out == ""
    assert f"manifest {manifest} has 3 problem(s)" in err and "Traceback" not in err
    assert f"row 3: {GENRES[0]}/missing.jpg: file not found" in err
    assert f"row 4: {first}: duplicate of row 2" in err
    assert f"row 5: ./{first}: duplicate of row 2" in err
    assert second not in err
    assert {name: (workspace / name).read_bytes() for name in before} == before


# --- predict, similar and the app: one indexed workspace -----------------------------------------


@dataclass
class Indexed:
    """The trained workspace, indexed (finetuned only), and what it held before the corpus ran."""

    workspace: Workspace
    classes: list[str]
    catalog: bytes
    ids: set[str]
    model: dict[str, str]


def stored_ids(workspace: Workspace) -> set[str]:
    from coverlens.service import CoverlensService

    service = CoverlensService(workspace)
    try:
        return service.stored_collection("finetuned").ids()
    finally:
        service.close()


def model_digests(workspace: Workspace) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(workspace.model_dir.iterdir())}


@pytest.fixture(scope="module")
def indexed(trained_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    """A private copy of the session's trained workspace, indexed with the fine-tuned backbone (no CLIP offline)."""
    target = tmp_path_factory.mktemp("bad-input") / "ws"
    shutil.copytree(trained_workspace.root, target, ignore=shutil.ignore_patterns("store", "clusters", "reports"))
    assert main(["index", "-w", str(target), "--embedder", "finetuned"]) == 0
    workspace = Workspace(target)
    ids = stored_ids(workspace)
    assert ids == set(distinct_covers(load_catalog(workspace))["id"])
    classes = json.loads((workspace.model_dir / "model.json").read_text())["classes"]
    return Indexed(workspace, classes, workspace.catalog_file.read_bytes(), ids, model_digests(workspace))


@CASES
def test_predict(case: Case, indexed: Indexed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
    """`coverlens predict FILE --json`: refused files exit 3 naming file and reason; the others get probabilities."""
    path = place(case, tmp_path / "query", monkeypatch)
    code = main(["predict", str(path), "--json", "-w", str(indexed.workspace.root)])
    captured = capsys.readouterr()
    [record] = json.loads(captured.out)
    assert record["path"] == str(path)
    if case.refused:
        assert code == ImageError.exit_code
        assert f"coverlens: error: {path}: " in captured.err and case.refused in captured.err
        assert case.refused in record["error"] and record["scores"] == [] and record["vote"] is None
    else:
        assert code == 0 and record["error"] is None and "error" not in captured.err
        probabilities = [s["probability"] for s in record["scores"]]
        assert [s["genre"] for s in record["scores"]] and {s["genre"] for s in record["scores"]} <= set(indexed.classes)
        assert probabilities == sorted(probabilities, reverse=True) and all(0 <= p <= 1 for p in probabilities)
        assert record["vote"]["evidence"]  # the KNN vote beside the head: the query was embedded too


@CASES
def test_similar(case: Case, indexed: Indexed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
    """`coverlens similar FILE`: refused files exit 3 naming file and reason; the others get score<TAB>path lines."""
    path = place(case, tmp_path / "query", monkeypatch)
    code = main(["similar", str(path), "-k", str(K), "-w", str(indexed.workspace.root)])
    captured = capsys.readouterr()
    if case.refused:
        assert code == ImageError.exit_code and captured.out == ""
        assert f"coverlens: error: {path}: " in captured.err and case.refused in captured.err
    else:
        assert code == 0, captured.err
        lines = captured.out.splitlines()
        assert len(lines) == K
        for line in lines:
            score, found = line.split("\t")
            assert -1.0 <= float(score) <= 1.0001 and Path(found).is_file()


class App:
    """The real service behind the app, launched once, and a client for its HTTP API."""

    def __init__(self, workspace: Workspace) -> None:
        from coverlens.service import CoverlensService
        from local_servers import launch_local

        self.service = CoverlensService(workspace)
        self.demo = launch_local(self.service)
        self.client = gradio_client.Client(self.demo.local_url, verbose=False, download_files=False)

    def search(self, path: Path) -> tuple[Any, ...]:
        return tuple(self.client.predict(gradio_client.handle_file(str(path)), None, 5, "finetuned",
                                         api_name="/search"))

    def close(self) -> None:
        self.demo.close()
        self.service.close()


@pytest.fixture(scope="module")
def app(indexed: Indexed) -> Iterator[App]:
    running = App(indexed.workspace)
    yield running
    running.close()


@CASES
def test_app_upload(case: Case, app: App, indexed: Indexed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload the engine refuses is a message naming the upload and the reason; any other is searched."""
    # the client must read the file to upload it: a locked upload is refused where the server reads it
    path = place(case, tmp_path / "upload", monkeypatch, chmod=False)
    message, query, head, vote, vote_scores, evidence, neighbours, cluster = app.search(path)
    if case.refused:
        assert case.filename in message and case.refused in message
        assert not any([query, head, vote, vote_scores, evidence, neighbours, cluster])
    else:
        assert head["label"] in indexed.classes and vote_scores["label"] in indexed.classes
        assert len(neighbours) == 5 and evidence
        assert query  # the uploaded cover is shown back


def test_nothing_stored_is_lost(indexed: Indexed) -> None:
    """Last in the module, after the corpus went through predict, similar and the app: same vectors, catalog, model."""
    assert stored_ids(indexed.workspace) == indexed.ids
    assert indexed.workspace.catalog_file.read_bytes() == indexed.catalog
    assert model_digests(indexed.workspace) == indexed.model
