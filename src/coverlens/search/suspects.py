"""Covers that look filed under the wrong genre, and near-duplicate covers (pure: arrays in, records out).

Both are exact cosine searches over all stored vectors, done as matrix products in row chunks so
that a 30k x 30k similarity matrix is never held at once (a chunk is 8M cells).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coverlens.embedders import l2_normalise
from coverlens.records import Hit
from coverlens.search.vote import knn_scores, vote

if TYPE_CHECKING:
    import numpy as np

CHUNK_CELLS = 8_000_000  # similarity cells per chunk: 32 MB of float32 (plus argpartition's int64 copy)
MAX_PAIRS = 100_000


@dataclass
class LabelSuspect:
    """A cover whose nearest neighbours vote, by a clear share, for another genre."""

    id: str
    path: str
    genre: str
    voted_genre: str
    vote_share: float
    evidence: list[Hit] = field(default_factory=list)  # its k nearest covers, closest first


@dataclass(frozen=True)
class NearDuplicatePair:
    a_id: str
    a_path: str
    a_genre: str
    b_id: str
    b_path: str
    b_genre: str
    similarity: float

    @property
    def cross_genre(self) -> bool:
        return self.a_genre != self.b_genre


def _chunks(n_rows: int, n_cols: int) -> Iterator[tuple[int, int]]:
    step = max(1, CHUNK_CELLS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _check(vectors: np.ndarray, *columns: Sequence[str]) -> np.ndarray:
    unit = l2_normalise(vectors)
    if any(len(c) != len(unit) for c in columns):
        raise ValueError(f"{len(unit)} vectors but columns of lengths {[len(c) for c in columns]}")
    return unit


def find_label_suspects(
    vectors: np.ndarray,
    ids: Sequence[str],
    genres: Sequence[str],
    paths: Sequence[str],
    *,
    k: int = 10,
    min_share: float = 0.7,
    splits: Sequence[str] | None = None,
    filed_genres: Sequence[str] | None = None,
) -> list[LabelSuspect]:
    """Covers whose k nearest other covers vote (similarity-weighted) >= `min_share` for another genre.

    `filed_genres` ("a|b" per cover, as the catalog writes them) keeps a cover filed under several
    genres from being flagged for one of its own. Sorted by vote share, highest first.
    """
    import numpy as np

    unit = _check(vectors, ids, genres, paths)
    n = len(unit)
    if n < 2:
        return []
    k = min(k, n - 1)
    names = sorted(set(genres))
    code_of = {g: c for c, g in enumerate(names)}
    codes = np.array([code_of[g] for g in genres])
    suspects: list[LabelSuspect] = []
    for start, stop in _chunks(n, n):
        sims = unit[start:stop] @ unit.T
        rows = np.arange(stop - start)
        sims[rows, rows + start] = -np.inf  # a cover is not its own neighbour
        scores = knn_scores(sims, codes, len(names), k=k, weighted=True)
        best = scores.argmax(axis=1)
        flagged = np.flatnonzero((best != codes[start:stop]) & (scores[rows, best] >= min_share))
        for row in flagged:
            i = start + int(row)
            top = np.argpartition(-sims[row], k - 1)[:k]
            top = top[np.argsort(-sims[row, top], kind="stable")]
            evidence = [Hit(id=ids[j], similarity=float(sims[row, j]), path=paths[j], genre=genres[j],
                            split=splits[j] if splits is not None else "") for j in top]
            verdict = vote(evidence, weighted=True)
            if verdict.genre is None or verdict.genre == genres[i]:
                continue
            if filed_genres is not None and verdict.genre in filed_genres[i].split("|"):
                continue
            share = verdict.scores[0].score
            suspects.append(LabelSuspect(id=ids[i], path=paths[i], genre=genres[i], voted_genre=verdict.genre,
                                         vote_share=round(share, 4), evidence=evidence))
    suspects.sort(key=lambda s: (-s.vote_share, s.id))
    return suspects


def find_near_duplicates(
    vectors: np.ndarray,
    ids: Sequence[str],
    genres: Sequence[str],
    paths: Sequence[str],
    *,
    threshold: float = 0.97,
    max_pairs: int = MAX_PAIRS,
) -> list[NearDuplicatePair]:
    """Pairs of distinct covers with cosine similarity >= `threshold`, most similar first.

    At most `max_pairs` (the most similar ones) are kept, so a low threshold cannot fill memory.
    """
    import numpy as np

    unit = _check(vectors, ids, genres, paths)
    n = len(unit)
    found_a, found_b, found_s = [], [], []
    for start, stop in _chunks(n, n):
        # only pairs (i, j) with j > i: each pair once, never a cover with itself
        sims = unit[start:stop] @ unit[start:].T
        sims[np.arange(stop - start)[:, None] >= np.arange(n - start)[None, :]] = -np.inf
        rows, cols = np.nonzero(sims >= threshold)
        values = sims[rows, cols]
        if len(values) > max_pairs:
            keep = np.argpartition(-values, max_pairs - 1)[:max_pairs]
            rows, cols, values = rows[keep], cols[keep], values[keep]
        found_a.append(rows + start)
        found_b.append(cols + start)
        found_s.append(values)
    if not found_s:
        return []
    a, b, s = (np.concatenate(parts) for parts in (found_a, found_b, found_s))
    order = np.lexsort((b, a, -s))[:max_pairs]
    return [NearDuplicatePair(a_id=ids[i], a_path=paths[i], a_genre=genres[i], b_id=ids[j], b_path=paths[j],
                              b_genre=genres[j], similarity=round(float(v), 6))
            for i, j, v in zip(a[order], b[order], s[order], strict=True)]
