"""`coverlens train` / `coverlens predict`, and how the classifier refuses bad or missing models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coverlens.classifier import TrainConfig, load_classifier, train_classifier
from coverlens.classifier.model_file import export_model, model_paths
from coverlens.cli import main
from coverlens.errors import CoverlensError, ModelError
from coverlens.weights import sha256_of
from coverlens.workspace import Workspace
from libraries import catalogued_library

TRAIN_ARGS = ["--no-pretrained", "--size", "32", "--epochs", "1", "--frozen-epochs", "0",
              "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def trained_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace trained through the CLI (mobilenet_v2, random init, one epoch)."""
    workspace = catalogued_library(tmp_path_factory.mktemp("cli"), genres=3, per_genre=12)
    assert main(["train", "-w", str(workspace.root), *TRAIN_ARGS]) == 0
    return workspace


def _copy_model(source: Workspace, target: Path) -> Workspace:
    workspace = Workspace(target)
    shutil.copytree(source.model_dir, workspace.model_dir)
    return workspace


def test_train_command_reports_time_and_model(trained_ws: Workspace, capsys) -> None:
    # the fixture trained it; train again to see the output (and that re-training replaces the model)
    before = sha256_of(model_paths(trained_ws)[0])
    assert main(["train", "-w", str(trained_ws.root), *TRAIN_ARGS, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained mobilenet_v2 at 32px" in out and "validation accuracy" in out
    assert f"model: {model_paths(trained_ws)[0]}" in out
    assert sha256_of(model_paths(trained_ws)[0]) != before
    assert sorted(p.name for p in trained_ws.model_dir.iterdir()) == ["model.json", "model.pkl"]  # no temp files


def test_train_without_a_terminal_logs_epochs_without_bar_noise(trained_ws: Workspace, tmp_path: Path) -> None:
    """Redirected to a file (as under nohup or CI), progress is one line per epoch, no carriage returns."""
    workspace = Workspace(tmp_path / "ws")
    shutil.copytree(trained_ws.root, workspace.root, ignore=shutil.ignore_patterns("model"))
    args = [a for a in TRAIN_ARGS if a != "--quiet"]
    done = subprocess.run([sys.executable, "-m", "coverlens", "train", "-w", str(workspace.root), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr
    epoch_rows = [line for line in done.stdout.splitlines() if line.startswith("epoch 0, train_loss ")]
    assert len(epoch_rows) == 1 and "valid_loss" in epoch_rows[0] and "accuracy" in epoch_rows[0]
    assert "trained mobilenet_v2 at 32px" in done.stdout


def test_predict_table_json_and_unreadable_file(trained_ws: Workspace, tmp_path: Path, capsys) -> None:
    library = Path(json.loads(trained_ws.library_file.read_text())["root"])
    good = sorted(library.glob("*/*.*"))[:2]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    code = main(["predict", str(good[0]), str(bad), str(good[1]), "--top-k", "2", "-w", str(trained_ws.root)])
    captured = capsys.readouterr()
    assert code == 3  # ImageError's exit code, after the readable files were answered
    assert str(bad) in captured.err and "not an image" in captured.err
    assert str(good[0]) in captured.out and str(good[1]) in captured.out
    assert str(bad) not in captured.out
    table = [line for line in captured.out.splitlines() if str(good[0]) in line and ": words" not in line]
    assert len(table) == 2  # top-2 rows (then the words read on it, a section of its own)

    assert main(["predict", str(good[0]), "--json", "--top-k", "3", "-w", str(trained_ws.root)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 1 and records[0]["path"] == str(good[0]) and records[0]["error"] is None
    probs = [s["probability"] for s in records[0]["scores"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-4
    assert records[0]["genre"] == records[0]["scores"][0]["genre"]


def test_predict_without_model(tmp_path: Path, capsys) -> None:
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    assert main(["predict", str(image), "-w", str(tmp_path / "empty")]) == ModelError.exit_code
    err = capsys.readouterr().err
    assert "no model in" in err and "coverlens train" in err


@pytest.mark.reliability
def test_changed_model_file_is_refused(trained_ws: Workspace, tmp_path: Path) -> None:
    workspace = _copy_model(trained_ws, tmp_path / "ws")
    with open(model_paths(workspace)[0], "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match="model file changed on disk.*re-run `coverlens train`"):
        load_classifier(workspace)


@pytest.mark.reliability
def test_model_linked_from_outside_the_workspace_is_refused(trained_ws: Workspace, tmp_path: Path) -> None:
    workspace = _copy_model(trained_ws, tmp_path / "ws")
    model = model_paths(workspace)[0]
    outside = tmp_path / "elsewhere.pkl"
    model.rename(outside)
    model.symlink_to(outside)  # same bytes, same hash: only where it lives is wrong
    with pytest.raises(ModelError, match="outside the workspace"):
        load_classifier(workspace)


def test_model_without_sidecar_is_refused(trained_ws: Workspace, tmp_path: Path) -> None:
    workspace = _copy_model(trained_ws, tmp_path / "ws")
    model_paths(workspace)[1].unlink()
    with pytest.raises(ModelError, match="model.json"):
        load_classifier(workspace)


def test_missing_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model in"):
        load_classifier(Workspace(tmp_path / "nothing"))


def test_failed_export_keeps_the_previous_model(trained_ws: Workspace, tmp_path: Path) -> None:
    workspace = _copy_model(trained_ws, tmp_path / "ws")
    before = sha256_of(model_paths(workspace)[0])

    class Crashing:
        def export(self, path: Path) -> None:
            Path(path).write_bytes(b"half a model")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_model(Crashing(), workspace, {})  # type: ignore[arg-type]
    assert sha256_of(model_paths(workspace)[0]) == before
    assert sorted(p.name for p in workspace.model_dir.iterdir()) == ["model.json", "model.pkl"]
    load_classifier(workspace)  # still loads


def test_interrupted_training_writes_nothing(trained_ws: Workspace, monkeypatch) -> None:
    import coverlens.classifier.train as train_module

    before = sha256_of(model_paths(trained_ws)[0])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(trained_ws, TrainConfig(image_size=32, pretrained=False), progress=False)
    assert sha256_of(model_paths(trained_ws)[0]) == before


def test_bad_settings_are_refused(trained_ws: Workspace) -> None:
    with pytest.raises(CoverlensError, match="valid_fraction"):
        train_classifier(trained_ws, TrainConfig(valid_fraction=0.0), progress=False)
    with pytest.raises(CoverlensError, match="unknown arch"):
        train_classifier(trained_ws, TrainConfig(arch="no_such_net", image_size=32, pretrained=False),
                         progress=False)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["predict", "--help"]])
def test_help_does_not_import_torch(argv: list[str]) -> None:
    script = ("import sys\nfrom coverlens.cli import main\n"
              f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
              "heavy = [m for m in ('torch', 'fastai', 'torchvision') if m in sys.modules]\n"
              "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
