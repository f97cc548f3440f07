"""Tests for coverlens.sample_library."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverlens.errors import ArgumentError
from coverlens.sample_library import GENRE_NAMES, draw_cover, make_sample_library


def test_genre_names_are_readable_and_unique() -> None:
    assert len(GENRE_NAMES) >= 12
    assert len(set(GENRE_NAMES)) == len(GENRE_NAMES)
    assert all(name.isalpha() and name.islower() for name in GENRE_NAMES)


def test_layout_and_count(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    paths = make_sample_library(root, genres=3, per_genre=5, size=64)
    assert len(paths) == 15
    assert paths == sorted(paths)
    assert sorted(p.name for p in root.iterdir()) == sorted(GENRE_NAMES[:3])
    for genre in GENRE_NAMES[:3]:
        files = sorted((root / genre).iterdir())
        assert [f.name for f in files] == [f"{genre}_{i:04d}.jpg" for i in range(1, 6)]
    with Image.open(paths[0]) as img:
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (64, 64)


def test_deterministic(tmp_path: Path) -> None:
    a = make_sample_library(tmp_path / "a", genres=2, per_genre=4, size=48, seed=7)
    b = make_sample_library(tmp_path / "b", genres=2, per_genre=4, size=48, seed=7)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    c = make_sample_library(tmp_path / "c", genres=2, per_genre=4, size=48, seed=8)
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_all_covers_distinct(tmp_path: Path) -> None:
    paths = make_sample_library(tmp_path, genres=len(GENRE_NAMES), per_genre=6, size=48)
    digests = {hashlib.md5(p.read_bytes()).hexdigest() for p in paths}
    assert len(digests) == len(paths)


def test_draw_cover_every_genre() -> None:
    rng = np.random.default_rng(0)
    for g in range(len(GENRE_NAMES)):
        img = draw_cover(g, rng, 40)
        assert img.mode == "RGB" and img.size == (40, 40)
    with pytest.raises(ArgumentError, match="genre_index must be in"):
        draw_cover(len(GENRE_NAMES), rng, 40)


@pytest.mark.parametrize(
    "kwargs",
    [{"genres": 0}, {"genres": len(GENRE_NAMES) + 1}, {"per_genre": 0}, {"per_genre": -3}],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ArgumentError, match=f"{next(iter(kwargs))} must be"):  # typed, exit 2 at the CLI
        make_sample_library(tmp_path / "lib", **kwargs)
    assert not (tmp_path / "lib").exists()


def test_non_empty_root_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=str(tmp_path)):
        make_sample_library(tmp_path, genres=1, per_genre=1, size=32)
    paths = make_sample_library(tmp_path, genres=1, per_genre=1, size=32, overwrite=True)
    assert len(paths) == 1 and (tmp_path / "keep.txt").read_text() == "mine"


def test_empty_existing_root_accepted(tmp_path: Path) -> None:
    assert len(make_sample_library(tmp_path, genres=1, per_genre=2, size=32)) == 2


def test_genres_separable_by_mean_colour(tmp_path: Path) -> None:
    """A nearest-centroid classifier on mean RGB separates held-out covers."""
    per_genre, n_train = 20, 10
    paths = make_sample_library(tmp_path, genres=4, per_genre=per_genre, size=64, seed=3)
    feats = np.array([np.asarray(Image.open(p).convert("RGB"), dtype=float).mean(axis=(0, 1)) for p in paths])
    labels = np.array([GENRE_NAMES.index(p.parent.name) for p in paths])
    index = np.array([int(p.stem.rsplit("_", 1)[1]) for p in paths])
    train, test = index <= n_train, index > n_train
    centroids = np.stack([feats[train & (labels == g)].mean(axis=0) for g in range(4)])
    dist = ((feats[test][:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    accuracy = (dist.argmin(axis=1) == labels[test]).mean()
    assert accuracy > 0.7


def test_planted_label_noise_and_near_duplicates(tmp_path: Path) -> None:
    from coverlens.catalog import dhash

    paths = make_sample_library(tmp_path / "lib", genres=3, per_genre=5, size=64, seed=1,
                                mislabelled=2, near_duplicates=2)
    odd = [p for p in paths if "_odd_" in p.name]
    copies = [p for p in paths if p.name.endswith("_copy.jpg")]
    assert len(paths) == 3 * 5 + 2 + 2 and len(odd) == 2 and len(copies) == 2
    assert odd[0].parent.name == "ambient"  # filed under the first genre, drawn like the second
    for copy in copies:
        source = copy.with_name(copy.name.replace("_copy", ""))
        assert copy.read_bytes() != source.read_bytes()
        with Image.open(copy) as a, Image.open(source) as b:
            assert bin(int(dhash(a), 16) ^ int(dhash(b), 16)).count("1") <= 4  # nearly the same picture


def test_unlabelled_covers_sit_at_the_root_with_hidden_genres(tmp_path: Path) -> None:
    import csv

    from coverlens.catalog import load_catalog, run_catalog
    from coverlens.workspace import Workspace

    root = tmp_path / "lib"
    make_sample_library(root, genres=2, per_genre=5, size=32, seed=4, unlabelled=4)
    with open(root / "hidden-genres.csv", newline="") as handle:
        hidden = {row["path"]: row["genre"] for row in csv.DictReader(handle)}
    assert len(hidden) == 4 and set(hidden.values()) == {"ambient", "country"}
    summary = run_catalog(Workspace(tmp_path / "ws"), root)
    frame = load_catalog(Workspace(tmp_path / "ws")).set_index("path")
    assert summary.unlabelled == 4 and summary.files == 14 and summary.skipped == 1  # the hidden-genres file
    assert all(frame.loc[name, "genre"] == "" and frame.loc[name, "split"] == "unlabelled" for name in hidden)
