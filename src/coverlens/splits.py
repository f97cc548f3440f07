"""Stratified, seeded, persistent train/test split over distinct covers.

Byte-identical copies share one split (no leakage between train and test). A cover keeps the
split it was given; new covers are placed so that each genre stays near the target fraction.
Unlabelled covers (genre "") are never in train or test: their split is "unlabelled".
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping

TRAIN, TEST, UNLABELLED = "train", "test", "unlabelled"


def _rank(cover_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{cover_id}".encode()).hexdigest()


def assign_splits(
    genre_of: Mapping[str, str],
    previous: Mapping[str, str],
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, str]:
    """Return a split for every cover id in `genre_of` (id -> stratification genre).

    Ids found in `previous` keep their split. Within each genre, new ids are taken in a seeded
    pseudo-random order and sent to test until the genre's test share reaches `test_fraction`.
    Ids whose genre is "" get UNLABELLED.
    """
    if not 0.0 <= test_fraction < 1.0:
        from coverlens.errors import ArgumentError

        raise ArgumentError(f"test_fraction must be in [0, 1), got {test_fraction}")
    by_genre: dict[str, list[str]] = defaultdict(list)
    for cover_id, genre in genre_of.items():
        by_genre[genre].append(cover_id)
    result: dict[str, str] = {cover_id: UNLABELLED for cover_id in by_genre.pop("", [])}
    for _genre, ids in sorted(by_genre.items()):
        kept = {i: previous[i] for i in ids if previous.get(i) in (TRAIN, TEST)}
        result.update(kept)
        fresh = sorted((i for i in ids if i not in kept), key=lambda i: _rank(i, seed))
        target_test = round(test_fraction * len(ids))
        need = max(0, target_test - sum(1 for s in kept.values() if s == TEST))
        for position, cover_id in enumerate(fresh):
            result[cover_id] = TEST if position < need else TRAIN
    return result
