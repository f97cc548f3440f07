from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bad_images import jpeg_bytes, write_bad_files
from coverlens.catalog import distinct_covers, load_catalog, run_catalog
from coverlens.errors import LibraryError, ManifestError, WorkspaceError
from coverlens.inspect_report import overview, write_inspect_report
from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_catalog_rows_and_split(small_library: Path, workspace: Workspace) -> None:
    summary = run_catalog(workspace, small_library)
    frame = load_catalog(workspace)
    assert summary.files == len(frame) == 30 and summary.read == 30 and summary.genres == 3
    assert set(frame["status"]) == {"ok"}
    assert (frame["id"].str.len() == 32).all() and frame["id"].is_unique
    assert set(frame["split"]) == {"train", "test"}
    for _genre, rows in frame.groupby("genre"):
        assert (rows["split"] == "test").sum() == 2  # round(0.2 * 10) per genre: stratified
    assert {"width", "height", "format", "mode"} <= set(frame.columns)
    assert (frame["format"] == "JPEG").all() and (frame["width"] == 48).all()


def test_library_is_never_written(small_library: Path, workspace: Workspace) -> None:
    before = snapshot(small_library)
    run_catalog(workspace, small_library)
    write_inspect_report(workspace, load_catalog(workspace))
    assert snapshot(small_library) == before


def test_unchanged_rerun_reads_nothing(small_library: Path, workspace: Workspace) -> None:
    run_catalog(workspace, small_library)
    first = workspace.catalog_file.read_bytes()
    again = run_catalog(workspace)  # the library recorded in the workspace
    assert again.read == 0 and again.reused == 30
    assert workspace.catalog_file.read_bytes() == first


def test_changed_file_is_reread(small_library: Path, workspace: Workspace) -> None:
    run_catalog(workspace, small_library)
    victim = next((small_library / "ambient").iterdir())
    victim.write_bytes(jpeg_bytes((50, 50)))
    summary = run_catalog(workspace, small_library)
    assert summary.read == 1
    row = load_catalog(workspace).set_index("path").loc[f"ambient/{victim.name}"]
    assert row["width"] == 50


def test_growing_library_keeps_every_split(tmp_path: Path, workspace: Workspace) -> None:
    library = tmp_path / "lib"
    make_sample_library(library, genres=2, per_genre=10, size=32, seed=2)
    run_catalog(workspace, library, seed=7)
    before = load_catalog(workspace).set_index("id")["split"].to_dict()
    extra = tmp_path / "extra"
    make_sample_library(extra, genres=2, per_genre=15, size=32, seed=3)
    for genre_dir in extra.iterdir():
        for image in genre_dir.iterdir():
            (library / genre_dir.name / f"new_{image.name}").write_bytes(image.read_bytes())
    summary = run_catalog(workspace, library)
    after = load_catalog(workspace).set_index("id")["split"].to_dict()
    assert summary.read == 30 and summary.reused == 20
    assert all(after[i] == split for i, split in before.items())
    for _genre, rows in load_catalog(workspace).groupby("genre"):
        assert (rows["split"] == "test").sum() == 5  # 25 covers -> 20% after growth too


def test_removed_files_leave_the_catalog(small_library: Path, workspace: Workspace) -> None:
    run_catalog(workspace, small_library)
    next((small_library / "ambient").iterdir()).unlink()
    summary = run_catalog(workspace, small_library)
    assert summary.removed == 1 and summary.files == 29


def test_bad_files_are_listed_with_reasons(small_library: Path, workspace: Workspace) -> None:
    reasons = write_bad_files(small_library / "ambient")
    summary = run_catalog(workspace, small_library)
    frame = load_catalog(workspace).set_index("path")
    assert summary.unreadable == len(reasons)
    for name, words in reasons.items():
        row = frame.loc[f"ambient/{name}"]
        assert row["status"] == "unreadable" and words in row["reason"] and row["split"] == ""
    view = overview(load_catalog(workspace))
    assert len(view.problems) == len(reasons)


def test_hidden_system_unicode_and_symlink_loop(small_library: Path, workspace: Workspace) -> None:
    genre = small_library / "ambient"
    for junk in (".DS_Store", "Thumbs.db", "._ambient_0001.jpg", ".hidden.jpg"):
        (genre / junk).write_bytes(b"junk")
    (genre / "süß cover é.jpg").write_bytes(jpeg_bytes((20, 20), (1, 2, 3)))
    (genre / "line\nbreak.jpg").write_bytes(jpeg_bytes((20, 20), (4, 5, 6)))
    (genre / "loop").symlink_to(genre, target_is_directory=True)
    (small_library / "README.txt").write_text("not a cover")
    (small_library / "empty-genre").mkdir()
    summary = run_catalog(workspace, small_library)
    frame = load_catalog(workspace)
    assert summary.files == 32 and summary.unreadable == 0
    assert "ambient/süß cover é.jpg" in set(frame["path"]) and "ambient/line\nbreak.jpg" in set(frame["path"])
    assert not frame["path"].str.contains("DS_Store|Thumbs|/\\._|/\\.hidden").any()
    assert summary.skipped == 1  # README.txt at the top


def test_duplicates_share_a_split_and_conflicts_are_found(small_library: Path, workspace: Workspace) -> None:
    source = next((small_library / "ambient").iterdir())
    (small_library / "country" / "copy.jpg").write_bytes(source.read_bytes())
    (small_library / "ambient" / "copy2.jpg").write_bytes(source.read_bytes())
    run_catalog(workspace, small_library)
    frame = load_catalog(workspace)
    copies = frame[frame["id"] == frame.set_index("path").loc[f"ambient/{source.name}", "id"]]
    assert len(copies) == 3 and copies["split"].nunique() == 1
    view = overview(frame, placeholder_min=3)
    assert [g.count for g in view.duplicate_groups] == [3]
    assert view.label_conflicts[0].genres == ["ambient", "country"]
    assert view.placeholders[0].count == 3
    distinct = distinct_covers(frame)
    assert len(distinct) == 30
    row = distinct.set_index("id").loc[copies["id"].iloc[0]]
    assert row["genre"] == "ambient" and row["genres"] == "ambient|country"


def test_manifest_catalog(small_library: Path, workspace: Workspace) -> None:
    rows = ["path,genre,width,md5"] + [
        f"{p.relative_to(small_library).as_posix()},{p.parent.name},48,x" for p in sorted(small_library.rglob("*.jpg"))
    ]
    manifest = small_library.parent / "labels.csv"
    manifest.write_text("\n".join(rows) + "\n")
    summary = run_catalog(workspace, small_library, manifest=manifest)
    assert summary.files == 30


def test_manifest_errors_list_every_bad_row(small_library: Path, workspace: Workspace) -> None:
    manifest = small_library / "bad.csv"
    manifest.write_text(
        "path,genre\nambient/ambient_0001.jpg,ambient\nmissing.jpg,pop\nambient/ambient_0002.jpg\n"
        "ambient/ambient_0001.jpg,ambient\n"
    )
    with pytest.raises(ManifestError) as caught:
        run_catalog(workspace, manifest=manifest)
    problems = caught.value.problems
    assert any("row 3" in p and "missing.jpg" in p and "not found" in p for p in problems)
    assert any("row 4" in p and "no genre field" in p for p in problems)  # `path,` (empty genre) is unlabelled
    assert any("row 5" in p and "duplicate of row 2" in p for p in problems)
    assert str(manifest) in str(caught.value)
    assert not workspace.catalog_file.exists()


def test_manifest_unknown_and_missing_columns(tmp_path: Path, workspace: Workspace) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,label,colour\na.jpg,x,red\n")
    with pytest.raises(ManifestError) as caught:
        run_catalog(workspace, manifest=manifest)
    text = str(caught.value)
    assert "missing column(s): path, genre" in text and "unknown column(s): file, label, colour" in text


def test_failed_catalog_keeps_previous_catalog(small_library: Path, workspace: Workspace) -> None:
    run_catalog(workspace, small_library)
    before = workspace.catalog_file.read_bytes()
    bad = small_library / "broken.csv"
    bad.write_text("path,genre\nnope.jpg,x\n")
    with pytest.raises(ManifestError):
        run_catalog(workspace, manifest=bad)
    assert workspace.catalog_file.read_bytes() == before


def test_missing_library_and_empty_library(tmp_path: Path, workspace: Workspace) -> None:
    with pytest.raises(LibraryError, match="does not exist"):
        run_catalog(workspace, tmp_path / "nowhere")
    (tmp_path / "empty" / "genre").mkdir(parents=True)
    with pytest.raises(WorkspaceError, match="no cover images"):
        run_catalog(workspace, tmp_path / "empty")


def test_workspace_of_another_format_is_refused(small_library: Path, workspace: Workspace) -> None:
    run_catalog(workspace, small_library)
    workspace.meta_file.write_text('{"format": 0}')
    with pytest.raises(WorkspaceError, match="format 0"):
        run_catalog(workspace, small_library)


def test_inspect_report_files(small_library: Path, workspace: Workspace) -> None:
    run_catalog(workspace, small_library)
    view, report = write_inspect_report(workspace, load_catalog(workspace))
    text = report.read_text()
    assert "| ambient | 10 | 10 | 0 | 8 | 2 |" in text
    assert (workspace.reports_dir / "genres.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert view.files == 30 and view.distinct == 30


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coverlens", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("command", [["--help"], ["catalog", "--help"], ["inspect", "--help"]])
def test_help_does_not_import_torch(command: list[str]) -> None:
    code = (f"import sys; from coverlens.cli import main\ntry: main({command!r})\nexcept SystemExit: pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("NO-TORCH")


def test_cli_catalog_and_inspect(small_library: Path, tmp_path: Path) -> None:
    env = {"COVERLENS_WORKSPACE": str(tmp_path / "ws-env")}
    done = run_cli("catalog", str(small_library), env=env)
    assert done.returncode == 0, done.stderr
    assert "catalogued 30 files" in done.stdout
    shown = run_cli("inspect", env=env)
    assert shown.returncode == 0 and "ambient" in shown.stdout and "inspect.md" in shown.stdout
    bad = run_cli("catalog", "--manifest", str(tmp_path / "none.csv"), env=env)
    assert bad.returncode == 4 and "none.csv" in bad.stderr and "Traceback" not in bad.stderr
