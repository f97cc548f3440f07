"""After a killed index run: similar, predict and suspects answer but warn (stderr, --json, the
app's notes); clusters and evaluate keep the report made from the complete store unless
--allow-incomplete, and record whether their store was complete."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coverlens.catalog import library_root, run_catalog
from coverlens.registry import REGISTRY
from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace
from indexing import make_workspace
from service_fakes import fake_service, use_fake_service
from test_adversarial import cli, refused

TESTS = Path(__file__).parent
KILLED_INDEX = """
import sys
sys.path.insert(0, sys.argv[1])
from indexing import FakeEmbedder, index
from coverlens.workspace import Workspace
index(Workspace.resolve(sys.argv[2]), FakeEmbedder("finetuned", delay=0.3, announce=True), batch_size=4)
"""
WARNING = "the store is incomplete (an index run started"
SKIP_ALL = [f"--no-{name}" for name, _ in REGISTRY.evaluated_rows()]  # the chance row alone: fast


def kill_index_mid_run(workspace: Workspace) -> None:
    child = subprocess.Popen([sys.executable, "-c", KILLED_INDEX, str(TESTS), str(workspace.root)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        for _ in range(2):  # the first batch has been handed to the writer
            assert child.stdout.readline().startswith("embedded"), child.stderr.read() if child.stderr else ""
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


class UniformClassifier:
    classes = ["a", "b", "c"]

    def predict_proba(self, images: list[Any], tta: bool = False) -> np.ndarray:
        return np.full((len(images), 3), 1 / 3)


@pytest.fixture
def killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Workspace:
    """Complete store, clusters and evaluation reports; then new covers and an index run killed -9."""
    workspace = make_workspace(tmp_path, genres=3, per_genre=8)
    use_fake_service(monkeypatch)
    w = ["-w", str(workspace.root)]
    assert cli(capsys, "index", "--embedder", "finetuned", *w)[0] == 0
    assert cli(capsys, "clusters", "--min-cluster-size", "3", *w)[0] == 0
    assert cli(capsys, "evaluate", *SKIP_ALL, *w)[0] == 0
    for path in make_sample_library(tmp_path / "more", genres=3, per_genre=6, size=40, seed=4):
        shutil.move(path, library_root(workspace) / path.parent.name / f"new-{path.name}")
    run_catalog(workspace)
    kill_index_mid_run(workspace)
    return workspace


def test_readers_warn_and_reports_are_kept(killed: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    w = ["-w", str(killed.root)]
    query = str(sorted(library_root(killed).glob("*/*.jpg"))[0])

    code, output = cli(capsys, "similar", query, "-k", "3", *w)
    refused(code, output, 0, f"coverlens: warning: {WARNING}", "covers stored so far only", "run `coverlens index`")
    # the warning goes to stderr; stdout holds the JSON, each row with the warnings
    main_json = json.loads(_stdout_of(capsys, "similar", query, "--json", *w))
    assert main_json and all(WARNING in row["warnings"][0] for row in main_json)
    suspects = json.loads(_stdout_of(capsys, "suspects", "--json", *w))
    assert WARNING in suspects["warnings"][0]

    service = fake_service(killed, load_classifier=lambda ws: UniformClassifier())
    try:
        result = service.search(Path(query))  # the app shows these notes as a banner
        assert any(WARNING in note for note in result.notes)
        [job] = service.predict([Path(query)])
        assert job.vote is not None and WARNING in job.notes[0]
    finally:
        service.close()

    clusters = killed.root / "clusters" / "finetuned.json"
    kept = clusters.read_bytes()
    code, output = cli(capsys, "clusters", "--min-cluster-size", "3", *w)
    refused(code, output, 8, f"not replacing the clusters report {clusters}, made from a complete store",
            "has not finished", "--allow-incomplete")
    assert clusters.read_bytes() == kept and not list(killed.root.rglob("*.tmp"))
    evaluation = killed.reports_dir / "evaluation.json"
    kept_evaluation = evaluation.read_bytes()
    code, output = cli(capsys, "evaluate", *SKIP_ALL, *w)
    refused(code, output, 8, "not replacing the evaluation report", "--allow-incomplete")
    assert evaluation.read_bytes() == kept_evaluation

    code, output = cli(capsys, "clusters", "--min-cluster-size", "3", "--allow-incomplete", *w)
    refused(code, output, 0, WARNING)
    params = json.loads(clusters.read_text())["params"]
    assert params["store_complete"] is False and "has not finished" in next(iter(params["store_incomplete"].values()))
    refused(*cli(capsys, "evaluate", *SKIP_ALL, "--allow-incomplete", *w), 0, WARNING)
    assert json.loads(evaluation.read_text())["settings"]["store_complete"] is False

    # a run that completes clears the warnings; reports made from it record a complete store
    assert cli(capsys, "index", "--embedder", "finetuned", *w)[0] == 0
    code, output = cli(capsys, "similar", query, *w)
    assert code == 0 and "warning" not in output
    assert cli(capsys, "clusters", "--min-cluster-size", "3", *w)[0] == 0
    assert json.loads(clusters.read_text())["params"]["store_complete"] is True


def _stdout_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from coverlens.cli import main

    assert main(list(argv)) == 0
    return capsys.readouterr().out
