"""Wrong state, as a user meets it on the command line: a store filled by another model, a model
file changed on disk, a workspace of another format, a store already opened by a writer (busy). Each is
refused with a message that says what to do, and nothing stored is lost."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coverlens.catalog import distinct_covers, library_root, load_catalog
from coverlens.cli import main
from coverlens.store import CoverStore
from coverlens.workspace import Workspace

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def indexed(trained_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The tiny trained workspace, indexed with its fine-tuned embedder (not to be changed: copy it)."""
    target = tmp_path_factory.mktemp("wrong-state") / "ws"
    shutil.copytree(trained_workspace.root, target, ignore=shutil.ignore_patterns("store", "clusters", "reports"))
    workspace = Workspace(target)
    assert main(["index", "-w", str(workspace.root), "--embedder", "finetuned"]) == 0
    return workspace


@pytest.fixture
def workspace(indexed: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    shutil.copytree(indexed.root, tmp_path / "ws")
    yield Workspace(tmp_path / "ws")


def stored_count(workspace: Workspace) -> int:
    """Covers in the finetuned collection, whatever model filled it."""
    with CoverStore.open(workspace) as store:
        [info] = [c for c in store.list_collections() if c.name.endswith("finetuned")]
        return info.count


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def a_cover(workspace: Workspace) -> str:
    return str(library_root(workspace) / distinct_covers(load_catalog(workspace))["path"].iloc[0])


def replace_model_with_another(workspace: Workspace) -> None:
    """What re-training does to the model file: new weights, new hash, a consistent sidecar."""
    from coverlens.classifier.model_file import export_model, load_verified, sidecar_facts

    learn, sidecar = load_verified(workspace)
    learn.model[1][-1].weight.data *= 2.0
    export_model(learn, workspace, sidecar_facts(sidecar))


def test_store_filled_by_another_model_is_refused_until_rebuilt(workspace: Workspace, capsys) -> None:
    covers = stored_count(workspace)
    replace_model_with_another(workspace)
    ws = str(workspace.root)
    for argv in (["index", "-w", ws, "--embedder", "finetuned"], ["similar", a_cover(workspace), "-w", ws]):
        code, err = run(capsys, *argv)
        assert code != 0 and "--rebuild" in err, (argv, err)
        assert stored_count(workspace) == covers  # the old vectors stay until the user asks
    assert run(capsys, "index", "-w", ws, "--embedder", "finetuned", "--rebuild")[0] == 0
    assert stored_count(workspace) == covers
    code, _ = run(capsys, "similar", a_cover(workspace), "-w", ws)
    assert code == 0


def test_model_file_changed_on_disk_is_refused_everywhere(workspace: Workspace, capsys) -> None:
    from coverlens.classifier.model_file import model_paths

    covers = stored_count(workspace)
    with open(model_paths(workspace)[0], "ab") as handle:
        handle.write(b"\0")
    ws, cover = str(workspace.root), a_cover(workspace)
    for argv in (["predict", cover, "-w", ws], ["similar", cover, "-w", ws],
                 ["index", "-w", ws, "--embedder", "finetuned"]):
        code, err = run(capsys, *argv)
        assert code != 0, argv
        assert "model file changed on disk" in err and "re-run `coverlens train`" in err, (argv, err)
    assert stored_count(workspace) == covers


def test_workspace_of_another_format_is_refused_by_every_command(workspace: Workspace, capsys) -> None:
    ws, cover = str(workspace.root), a_cover(workspace)
    workspace.meta_file.write_text('{"format": 0}\n', encoding="utf-8")
    catalog_bytes, covers = workspace.catalog_file.read_bytes(), stored_count(workspace)
    commands = [["catalog", "-w", ws], ["inspect", "-w", ws], ["train", "-w", ws, "--no-pretrained", "--quiet"],
                ["predict", cover, "-w", ws], ["index", "-w", ws], ["similar", cover, "-w", ws],
                ["clusters", "-w", ws], ["suspects", "-w", ws], ["evaluate", "-w", ws, "--no-clip"]]
    for argv in commands:
        code, err = run(capsys, *argv)
        assert code != 0, argv
        assert "has format 0" in err and "use a new --workspace folder" in err, (argv, err)
    assert workspace.catalog_file.read_bytes() == catalog_bytes and stored_count(workspace) == covers


def test_store_already_opened_by_a_writer_is_refused(workspace: Workspace, capsys) -> None:
    covers = stored_count(workspace)
    holder = CoverStore.open(workspace, writer=True)  # another writer, as a second `coverlens index` would be
    try:
        code, err = run(capsys, "index", "-w", str(workspace.root), "--embedder", "finetuned")
        assert code == 9
        assert f"is busy: index, pid {os.getpid()}, since" in err and "--chroma-url" in err
    finally:
        holder.close()
    assert stored_count(workspace) == covers
    assert run(capsys, "index", "-w", str(workspace.root), "--embedder", "finetuned")[0] == 0
