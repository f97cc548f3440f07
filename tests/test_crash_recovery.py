"""Crash recovery: the three writers (index, catalog, train's export) killed with SIGKILL at random
points, then re-run. Each trial checks that what the kill left can be read, and that the re-run
ends exactly where an uninterrupted run ends: no cover missing, none twice, no half-written file.

Trial counts follow `stress.scale`: a few in `make test`, 25 each in `make stress`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stress
from coverlens.catalog import library_root, read_rows, run_catalog
from coverlens.workspace import Workspace
from indexing import FakeEmbedder, catalog_ids, index, make_workspace, stored

pytestmark = pytest.mark.reliability

TESTS = Path(__file__).parent
TRIALS = stress.scale(fast=3, stress=25)


def start_child(code: str, args: list[str], log: Path) -> subprocess.Popen:
    """`code` in a fresh Python (stderr to `log`), returned once it printed "ready" (imports done)."""
    with open(log, "w", encoding="utf-8") as errors:
        child = subprocess.Popen([sys.executable, "-c", code, str(TESTS), *args], stdout=subprocess.PIPE,
                                 stderr=errors, text=True)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.kill()
        child.wait()
        pytest.fail(f"child did not start: {log.read_text()}")
    return child


def kill_child(code: str, args: list[str], log: Path, kill_after: float) -> bool:
    """SIGKILL the child `kill_after` seconds after it is ready; False when it finished first."""
    child = start_child(code, args, log)
    try:
        child.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        return True
    assert child.returncode == 0, f"child failed: {log.read_text()}"
    return False


def timed_child(code: str, args: list[str], log: Path) -> float:
    """Seconds from "ready" to "done" (the work itself, not the interpreter's exit) of an uninterrupted
    run: the range the kill points are drawn from."""
    child = start_child(code, args, log)
    started = time.monotonic()
    assert child.stdout is not None
    for line in child.stdout:  # the command's own output comes first
        if line.strip() == "done":
            break
    else:
        pytest.fail(f"child ended without finishing: {log.read_text()}")
    span = time.monotonic() - started
    assert child.wait(timeout=120) == 0, log.read_text()
    return span


def copy_workspace(template: Workspace, target: Path) -> Workspace:
    shutil.copytree(template.root, target)
    return Workspace(target)


def grow_and_shrink(library: Path, root: Path, removed: int, added: int) -> None:
    """Change a library the way a user does: some covers deleted, some new ones filed."""
    from coverlens.sample_library import make_sample_library

    for path in sorted(library.glob("*/*.jpg"))[::3][:removed]:
        path.unlink()
    extra = make_sample_library(root / "extra", genres=3, per_genre=added // 3, size=40, seed=9)
    for path in extra:
        path.rename(library / path.parent.name / f"new-{path.name}")


# ---------------------------------------------------------------- index

INDEX_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import chromadb  # imported before "ready": the kill points fall in the work, not in imports
from indexing import FakeEmbedder, index
from coverlens.workspace import Workspace
print("ready", flush=True)
index(Workspace.resolve(sys.argv[2]), FakeEmbedder(delay=0.01), batch_size=4)
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def index_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, set[str]]:
    """A store filled from an older state of the library; the library has changed since, so a
    re-index both deletes covers and adds new ones. Returns it and every id it ever held."""
    root = tmp_path_factory.mktemp("index-crash")
    workspace = make_workspace(root, genres=3, per_genre=20)
    index(workspace, FakeEmbedder())
    known = catalog_ids(workspace)
    grow_and_shrink(root / "lib", root, removed=9, added=45)
    run_catalog(workspace)
    return workspace, known | catalog_ids(workspace)


def check_store_matches_catalog(workspace: Workspace) -> None:
    """Every catalogued cover once, with the vector its image gives, and nothing else."""
    fake = FakeEmbedder()
    collection = stored(workspace, fake)
    expected = catalog_ids(workspace)
    assert collection.count() == len(expected) and collection.ids() == expected
    everything = collection.fetch()
    library = library_root(workspace)
    images = [Image.open(library / meta["path"]) for meta in everything.metadatas]
    np.testing.assert_allclose(everything.vectors, fake.embed(images), atol=1e-5)


def test_indexer_killed_at_random_points_then_rerun(index_template: tuple[Workspace, set[str]],
                                                   tmp_path: Path) -> None:
    template, known_ids = index_template
    rng = np.random.default_rng(2026)
    span = timed_child(INDEX_CHILD, [str(copy_workspace(template, tmp_path / "timing").root)], tmp_path / "t.log")
    killed, partial_counts = 0, []
    for trial in range(TRIALS):
        workspace = copy_workspace(template, tmp_path / f"trial-{trial}")
        killed += kill_child(INDEX_CHILD, [str(workspace.root)], tmp_path / f"{trial}.log",
                             float(rng.uniform(0.0, span)))
        left = stored(workspace, FakeEmbedder())  # what the kill left opens and reads
        left_ids = left.ids()
        assert left.count() == len(left_ids) and left_ids <= known_ids
        partial_counts.append(len(left_ids))
        index(workspace, FakeEmbedder())
        check_store_matches_catalog(workspace)
    stress.record("index killed with SIGKILL then re-run", trials=TRIALS, killed_mid_run=killed,
                  run_seconds=round(span, 2), stores_equal_to_catalog_after_rerun=TRIALS,
                  covers_after_kill=f"{min(partial_counts)}-{max(partial_counts)}")
    assert killed >= TRIALS // 2  # the kill points really fell inside the runs


# ---------------------------------------------------------------- catalog

CATALOG_CHILD = """
import sys
import pandas  # imported before "ready": the kill points fall in the work, not in imports
from coverlens.cli import main
print("ready", flush=True)
code = main(["catalog", "--workspace", sys.argv[2]])
print("done", flush=True)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def catalog_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list[dict], list[dict]]:
    """A catalog of an older library state, the rows before, and the rows an uninterrupted
    re-catalog of the changed library gives (the reference every re-run must reach)."""
    from coverlens.sample_library import make_sample_library

    root = tmp_path_factory.mktemp("catalog-crash")
    make_sample_library(root / "lib", genres=3, per_genre=80, size=48, seed=3)
    workspace = Workspace(root / "ws")
    run_catalog(workspace, root / "lib")
    before = read_rows(workspace.catalog_file)
    grow_and_shrink(root / "lib", root, removed=30, added=60)
    reference = copy_workspace(workspace, root / "reference")
    run_catalog(reference)
    return workspace, before, read_rows(reference.catalog_file)


def test_catalog_killed_at_random_points_then_rerun(catalog_template: tuple[Workspace, list[dict], list[dict]],
                                                    tmp_path: Path) -> None:
    template, before, reference = catalog_template
    rng = np.random.default_rng(7)
    span = timed_child(CATALOG_CHILD, [str(copy_workspace(template, tmp_path / "timing").root)], tmp_path / "t.log")
    killed, old_left, new_left = 0, 0, 0
    for trial in range(TRIALS):
        workspace = copy_workspace(template, tmp_path / f"trial-{trial}")
        killed += kill_child(CATALOG_CHILD, [str(workspace.root)], tmp_path / f"{trial}.log",
                             float(rng.uniform(0.0, span)))
        left = read_rows(workspace.catalog_file)  # whole: the old catalog or the new one, never a mix
        assert left in (before, reference)
        old_left += left == before
        new_left += left == reference
        run_catalog(workspace)
        assert read_rows(workspace.catalog_file) == reference  # splits of old covers kept, new ones added
    stress.record("catalog killed with SIGKILL then re-run", trials=TRIALS, killed_mid_run=killed,
                  run_seconds=round(span, 2), left_old_catalog=old_left, left_new_catalog=new_left,
                  catalogs_equal_to_reference_after_rerun=TRIALS)
    assert killed >= TRIALS // 2


# ---------------------------------------------------------------- train's export

EXPORT_CHILD = """
import sys
from coverlens.classifier.model_file import export_model, load_verified, sidecar_facts
from coverlens.workspace import Workspace
source, target = Workspace.resolve(sys.argv[2]), Workspace.resolve(sys.argv[3])
learn, sidecar = load_verified(source)
facts = sidecar_facts(sidecar)
print("ready", flush=True)
for round in range(1000):
    export_model(learn, target, {**facts, "round": round})
"""


def test_export_killed_at_random_points_always_leaves_a_loadable_model(trained_workspace: Workspace,
                                                                       tmp_path: Path) -> None:
    from coverlens.classifier import load_classifier
    from coverlens.classifier.model_file import (
        export_model,
        load_verified,
        model_paths,
        pending_sidecar_path,
        sidecar_facts,
    )
    from coverlens.weights import sha256_of

    library = library_root(trained_workspace)
    images = [Image.open(p).convert("RGB") for p in sorted(library.glob("*/*.jpg"))[:4]]
    reference = load_classifier(trained_workspace).predict_proba(images)
    rng = np.random.default_rng(11)
    export_seconds = time_one_export(trained_workspace, tmp_path)
    killed, completed_on_load, stale_temps = 0, 0, 0
    for trial in range(TRIALS):
        target = Workspace(tmp_path / f"trial-{trial}")
        shutil.copytree(trained_workspace.model_dir, target.model_dir)
        killed += kill_child(EXPORT_CHILD, [str(trained_workspace.root), str(target.root)],
                             tmp_path / f"{trial}.log", float(rng.uniform(0.0, 4 * export_seconds)))
        stale_temps += any(target.model_dir.glob(".*.tmp"))
        completed_on_load += pending_sidecar_path(target).exists()
        classifier = load_classifier(target)  # never refused, never half a file
        np.testing.assert_allclose(classifier.predict_proba(images), reference, atol=1e-5)
        model_path, _ = model_paths(target)
        assert classifier.identity["sha256"] == sha256_of(model_path)
        learn, sidecar = load_verified(target)
        export_model(learn, target, sidecar_facts(sidecar))
        assert sorted(p.name for p in target.model_dir.iterdir()) == ["model.json", "model.pkl"]
    stress.record("train export killed with SIGKILL", trials=TRIALS, killed_mid_run=killed,
                  export_seconds=round(export_seconds, 3), models_loaded_after_kill=TRIALS,
                  pending_sidecars_seen=completed_on_load, stale_temp_files_cleaned=stale_temps)
    assert killed == TRIALS  # the child exports in a loop: every kill lands in some export


def time_one_export(trained_workspace: Workspace, tmp_path: Path) -> float:
    from coverlens.classifier.model_file import export_model, load_verified, sidecar_facts

    learn, sidecar = load_verified(trained_workspace)
    started = time.monotonic()
    export_model(learn, Workspace(tmp_path / "timing"), sidecar_facts(sidecar))
    return time.monotonic() - started


def test_export_interrupted_between_its_two_moves_is_completed_on_load(trained_workspace: Workspace,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The narrowest window (new model moved in, sidecar not yet): deterministic, not left to chance."""
    from coverlens.classifier import load_classifier, model_file

    target = Workspace(tmp_path / "ws")
    shutil.copytree(trained_workspace.model_dir, target.model_dir)
    learn, sidecar = model_file.load_verified(target)
    old_digest = sidecar["model_sha256"]

    def crash(pending: Path, sidecar_path: Path) -> None:
        raise KeyboardInterrupt("killed between the moves (simulated)")

    monkeypatch.setattr(model_file, "_promote", crash)
    learn.model[1][-1].weight.data *= 2.0  # a different model, so the two hashes differ
    with pytest.raises(KeyboardInterrupt):
        model_file.export_model(learn, target, model_file.sidecar_facts(sidecar))
    monkeypatch.undo()
    assert model_file.pending_sidecar_path(target).exists()
    classifier = load_classifier(target)
    assert classifier.identity["sha256"] != old_digest
    assert not model_file.pending_sidecar_path(target).exists()
