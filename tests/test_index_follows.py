"""`index` follows the library: one `index` takes deletions, renames and new covers into the
store; a library that vanished or is not mounted is refused with the re-point command, and the
store is left as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coverlens.catalog import library_root
from coverlens.cli import main
from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace
from indexing import make_workspace
from service_fakes import library_state, store_state, use_fake_service
from test_adversarial import cli, refused, snapshot


@pytest.fixture
def indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Workspace:
    workspace = make_workspace(tmp_path, genres=3, per_genre=6)
    use_fake_service(monkeypatch)
    assert cli(capsys, "index", "--embedder", "finetuned", "-w", str(workspace.root))[0] == 0
    assert store_state(workspace) == library_state(library_root(workspace))
    return workspace


def test_one_index_takes_deletions_renames_and_new_covers(indexed: Workspace, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = library_root(indexed)
    genres = sorted(p.name for p in root.iterdir())
    gone = sorted((root / genres[0]).glob("*.jpg"))[:2]
    for path in gone:
        path.unlink()
    (root / genres[1]).rename(root / "renamed-genre")
    for path in make_sample_library(tmp_path / "more", genres=1, per_genre=3, size=40, seed=9):
        shutil.move(path, root / genres[2] / f"new-{path.name}")

    code, output = cli(capsys, "index", "--embedder", "finetuned", "-w", str(indexed.root))
    refused(code, output, 0, "library: catalogued", "-2 deleted", "+3 embedded")
    expected = library_state(root)
    assert store_state(indexed) == expected  # ids, paths and genres: the store equals the library
    assert {g for _, g in expected.values()} == {genres[0], "renamed-genre", genres[2]}
    assert not any(path.relative_to(root).as_posix() in {p for p, _ in expected.values()} for path in gone)

    code, output = cli(capsys, "index", "--embedder", "finetuned", "-w", str(indexed.root))
    refused(code, output, 0, "+0 embedded, -0 deleted, 0 metadata updated")  # nothing changed: nothing to do


@pytest.mark.parametrize("how", ["moved", "unmounted"])
def test_a_vanished_library_is_refused_and_the_store_kept(indexed: Workspace, tmp_path: Path, how: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = library_root(indexed)
    before = store_state(indexed)
    moved = tmp_path / "moved-library"
    root.rename(moved)
    if how == "unmounted":
        root.mkdir()  # a mount point whose disk is not there: an empty folder
    files = {k: v for k, v in snapshot(indexed.root).items() if k != "writer.lock"}
    code, output = cli(capsys, "index", "--embedder", "finetuned", "-w", str(indexed.root))
    words = ["is missing or not mounted"] if how == "moved" else ["is empty now (a disk not mounted?)"]
    refused(code, output, 4, str(root), *words, "the store is kept as it is",
            f"coverlens catalog NEWROOT -w {indexed.root}")
    assert {k: v for k, v in snapshot(indexed.root).items() if k != "writer.lock"} == files
    assert store_state(indexed) == before

    # re-pointed, the same covers are found again: nothing is embedded anew
    assert cli(capsys, "catalog", str(moved), "-w", str(indexed.root))[0] == 0
    code, output = cli(capsys, "index", "--embedder", "finetuned", "-w", str(indexed.root))
    refused(code, output, 0, "+0 embedded, -0 deleted")
    assert store_state(indexed) == before == library_state(moved)


def test_a_library_with_files_but_no_cover_left_is_refused(indexed: Workspace,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = library_root(indexed)
    before = store_state(indexed)
    for path in root.glob("*/*.jpg"):
        path.unlink()
    (root / "README.txt").write_text("covers are on the other disk\n")
    code, output = cli(capsys, "index", "--embedder", "finetuned", "-w", str(indexed.root))
    refused(code, output, 4, "no cover images found under", "coverlens catalog NEWROOT")
    assert store_state(indexed) == before


def test_index_help_promises_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Brings the catalog up to date with the library first" in text
