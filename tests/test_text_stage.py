"""The text stage: reads each distinct cover once, in worker processes; incremental, resumable after
kill -9 (same store as an uninterrupted run), failures recorded, removed covers forgotten."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coverlens.text.ocr import OcrSettings
from coverlens.text.stage import prune_text, run_text_stage
from coverlens.text.store import TextStore
from text_covers import write_word_covers

WORDS = ["JAZZ", "METAL", "OPERA", "BLUES", "TECHNO", "FOLK", "SOUL", "PUNK", "DISCO", "REGGAE", "SALSA", "GOSPEL"]
SETTINGS = OcrSettings(det_side=480)  # covers are 160 px: a smaller detection size reads them as well, faster


@pytest.fixture(scope="module")
def covers(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("word-covers")
    paths = write_word_covers(folder, {w.lower(): [w] for w in WORDS}, size=160)
    return [(f"id-{name}", str(path)) for name, path in paths.items()]


def squeeze(text: str) -> str:
    return "".join(text.upper().split())


def test_reads_each_distinct_cover_once_then_only_new_ones(tmp_path: Path, covers: list[tuple[str, str]]) -> None:
    seen: list[int] = []

    def progress(items, total):
        seen.append(total)
        yield from items

    with TextStore(tmp_path / "text.db") as store:
        first = run_text_stage(store, covers[:3] + covers[:1], settings=SETTINGS, workers=1, progress=progress)
        assert (first.covers, first.read, first.failed, first.reused) == (3, 3, 0, 0)
        assert seen == [3]
        stored = store.get([cid for cid, _ in covers[:3]])
        for cid, _ in covers[:3]:
            assert squeeze(stored[cid].text) == cid.removeprefix("id-").upper()
            assert stored[cid].reader == first.reader and stored[cid].lines[0].confidence >= 0.5
        again = run_text_stage(store, covers[:4], settings=SETTINGS, workers=1)
        assert (again.read, again.reused) == (1, 3)
        other_reader = run_text_stage(store, covers[:4], settings=OcrSettings(det_side=416), workers=1)
        assert other_reader.read == 4  # text from another reader identity is read again


def test_an_unreadable_cover_is_a_recorded_failure(tmp_path: Path, covers: list[tuple[str, str]]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with TextStore(tmp_path / "text.db") as store:
        summary = run_text_stage(store, [("bad", str(broken)), ("gone", str(tmp_path / "nope.png")), covers[0]],
                                 settings=SETTINGS, workers=1)
        assert (summary.read, summary.failed) == (1, 2)
        got = store.get(["bad", "gone"])
        assert "not an image" in got["bad"].error and "not found" in got["gone"].error
        assert got["bad"].text == "" and store.find("image") == []
        assert run_text_stage(store, [("bad", str(broken))], settings=SETTINGS, workers=1).read == 0
        broken.write_bytes(Path(covers[1][1]).read_bytes())  # fixed on disk: retried on request only
        assert run_text_stage(store, [("bad", str(broken))], settings=SETTINGS, workers=1, retry_failed=True).read == 1


def test_prune_forgets_covers_gone_from_the_catalog(tmp_path: Path, covers: list[tuple[str, str]]) -> None:
    with TextStore(tmp_path / "text.db") as store:
        run_text_stage(store, covers[:2], settings=SETTINGS, workers=1)
        assert prune_text(store, [covers[0][0]]) == 1
        assert set(store.readers()) == {covers[0][0]}


STAGE_SCRIPT = """
import sys
from coverlens.text.ocr import OcrSettings
from coverlens.text.stage import run_text_stage
from coverlens.text.store import TextStore
if __name__ == "__main__":
    pairs = [tuple(line.split("\\t")) for line in open(sys.argv[2]).read().splitlines()]
    with TextStore(sys.argv[1]) as store:
        run_text_stage(store, pairs, settings=OcrSettings(det_side=480), workers=2, batch_size=2)
"""


def test_kill_9_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path, covers: list[tuple[str, str]]) -> None:
    listing = tmp_path / "covers.tsv"
    listing.write_text("\n".join(f"{cid}\t{path}" for cid, path in covers))
    script = tmp_path / "stage.py"
    script.write_text(STAGE_SCRIPT)
    killed_db = tmp_path / "killed" / "text.db"
    killed_db.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # its own process group, so the kill reaches the parent and its OCR workers at once, as a crash would
    child = subprocess.Popen([sys.executable, str(script), str(killed_db), str(listing)], env=env,
                             start_new_session=True)
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and child.poll() is None:
        if killed_db.exists():
            with TextStore(killed_db) as peek:
                stored = peek.count()
            if stored >= 2:
                break
        time.sleep(0.05)
    assert child.poll() is None, "the stage ended before it could be killed"
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    with TextStore(killed_db) as store:
        left = store.count()
        assert 2 <= left < len(covers)
        resumed = run_text_stage(store, covers, settings=SETTINGS, workers=2)
        assert resumed.read == len(covers) - left
        after_kill = store.dump()
    with TextStore(tmp_path / "clean" / "text.db") as clean:
        run_text_stage(clean, covers, settings=SETTINGS, workers=2)
        assert clean.dump() == after_kill
    assert len(after_kill) == len(covers) and all(row[3] for row in after_kill)


def test_a_catalogued_workspace_is_read_and_covers_removed_from_it_are_forgotten(tmp_path: Path) -> None:
    from coverlens.catalog import run_catalog
    from coverlens.text.stage import read_workspace_text, text_store_for
    from libraries import catalogued_library

    workspace = catalogued_library(tmp_path, genres=2, per_genre=2, size=48)
    first = read_workspace_text(workspace.root, settings=SETTINGS, workers=1)
    assert (first.covers, first.read + first.failed, first.reused) == (4, 4, 0)
    victim = sorted((tmp_path / "library").rglob("*.jpg"))[0]
    victim.unlink()
    run_catalog(workspace, tmp_path / "library")
    again = read_workspace_text(workspace.root, settings=SETTINGS, workers=1)
    assert (again.covers, again.read, again.reused) == (3, 0, 3)
    with text_store_for(workspace.root, readonly=True) as store:
        assert store.count() == 3
