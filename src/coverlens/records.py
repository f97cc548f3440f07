"""Typed records passed between the core, the CLI and the app."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hit:
    """One stored cover returned by a nearest-neighbour query."""

    id: str
    similarity: float  # cosine similarity in [-1, 1]; higher is closer
    path: str  # relative to the library root
    genre: str  # "" for an unlabelled cover (it never votes)
    split: str
    source: str = "file"  # where the picture is inside `path` (see `coverlens.sources.read_cover`)


@dataclass(frozen=True)
class GenreScore:
    genre: str
    score: float  # a probability (head) or a normalised vote share (KNN)


@dataclass
class Vote:
    """A similarity-weighted KNN genre vote and the neighbours that cast it."""

    genre: str | None
    scores: list[GenreScore]
    evidence: list[Hit] = field(default_factory=list)
