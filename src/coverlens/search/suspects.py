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
    evidence: list[Hit] = field(default_factory=list)  # its k nearest labelled covers, closest first
    source: str = "file"  # where the picture is inside `path`


@dataclass(frozen=True)
class NearDuplicatePair:
    a_id: str
    a_path: str
    a_genre: str
    b_id: str
    b_path: str
    b_genre: str
    similarity: float
    a_source: str = "file"
    b_source: str = "file"

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


@dataclass
class LabelledVotes:
    """The KNN vote of a chunk of covers over their k nearest LABELLED other covers."""

    rows: np.ndarray  # the covers voted on (indices into the vectors)
    similarities: np.ndarray  # (len(rows), n labelled): cover x labelled reference, self = -inf
    scores: np.ndarray  # (len(rows), len(names)): similarity-weighted vote shares, as `knn_scores`
    k: int


def labelled_votes(unit: np.ndarray, genres: Sequence[str], names: Sequence[str], rows: np.ndarray, *,
                   k: int) -> Iterator[LabelledVotes]:
    """Chunks of the vote of each cover in `rows` over its k nearest labelled other covers.

    `unit` holds unit vectors; `names` the sorted genres (score columns). Unlabelled covers (genre
    "") may be voted on but never vote, and a cover never votes for itself.
    """
    import numpy as np

    labelled = np.flatnonzero(np.array([bool(g) for g in genres], dtype=bool))
    if len(labelled) == 0 or len(rows) == 0:
        return
    code_of = {g: c for c, g in enumerate(names)}
    codes = np.array([code_of[genres[j]] for j in labelled])
    references = unit[labelled]
    k = min(k, len(labelled))
    for start, stop in _chunks(len(rows), len(labelled)):
        chunk = rows[start:stop]
        sims = unit[chunk] @ references.T
        at = np.minimum(np.searchsorted(labelled, chunk), len(labelled) - 1)
        own = np.flatnonzero(labelled[at] == chunk)
        sims[own, at[own]] = -np.inf  # a cover is not its own neighbour
        yield LabelledVotes(chunk, sims, knn_scores(sims, codes, len(names), k=k, weighted=True), k)


def evidence_hits(similarities: np.ndarray, k: int, labelled: np.ndarray, ids: Sequence[str],
                  genres: Sequence[str], paths: Sequence[str], splits: Sequence[str] | None,
                  sources: Sequence[str] | None) -> list[Hit]:
    """The k nearest labelled covers of one row of `LabelledVotes.similarities`, closest first."""
    import numpy as np

    top = np.argpartition(-similarities, k - 1)[:k]
    top = top[np.argsort(-similarities[top], kind="stable")]
    return [Hit(id=ids[j], similarity=float(similarities[t]), path=paths[j], genre=genres[j],
                split=splits[j] if splits is not None else "", source=sources[j] if sources is not None else "file")
            for t, j in ((t, int(labelled[t])) for t in top) if np.isfinite(similarities[t])]


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
    sources: Sequence[str] | None = None,
) -> list[LabelSuspect]:
    """Covers whose k nearest other covers vote (similarity-weighted) >= `min_share` for another genre.

    `filed_genres` ("a|b" per cover, as the catalog writes them) keeps a cover filed under several
    genres from being flagged for one of its own. Unlabelled covers (genre "") are never suspects
    and never vote (`coverlens.suggest` proposes genres for them). Sorted by vote share, highest first.
    """
    import numpy as np

    unit = _check(vectors, ids, genres, paths)
    names = sorted(set(genres) - {""})
    rows = np.flatnonzero(np.array([bool(g) for g in genres], dtype=bool))
    if len(rows) < 2:
        return []
    code_of = {g: c for c, g in enumerate(names)}
    suspects: list[LabelSuspect] = []
    for chunk in labelled_votes(unit, genres, names, rows, k=min(k, len(rows) - 1)):
        best = chunk.scores.argmax(axis=1)
        own = np.array([code_of[genres[i]] for i in chunk.rows])
        at = np.arange(len(chunk.rows))
        for row in np.flatnonzero((best != own) & (chunk.scores[at, best] >= min_share)):
            i = int(chunk.rows[row])
            evidence = evidence_hits(chunk.similarities[row], chunk.k, rows, ids, genres, paths, splits, sources)
            verdict = vote(evidence, weighted=True)
            if verdict.genre is None or verdict.genre == genres[i]:
                continue
            if filed_genres is not None and verdict.genre in filed_genres[i].split("|"):
                continue
            share = verdict.scores[0].score
            suspects.append(LabelSuspect(id=ids[i], path=paths[i], genre=genres[i], voted_genre=verdict.genre,
                                         vote_share=round(share, 4), evidence=evidence,
                                         source=sources[i] if sources is not None else "file"))
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
    sources: Sequence[str] | None = None,
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
    source = sources if sources is not None else ["file"] * n
    return [NearDuplicatePair(a_id=ids[i], a_path=paths[i], a_genre=genres[i], b_id=ids[j], b_path=paths[j],
                              b_genre=genres[j], similarity=round(float(v), 6), a_source=source[i],
                              b_source=source[j])
            for i, j, v in zip(a[order], b[order], s[order], strict=True)]
