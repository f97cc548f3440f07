"""Genre suggestions: pure functions from the engine's evidence (arrays) to suggestion records.

Two kinds of covers get a suggestion:

- **unlabelled** covers (genre ""): every one, with whatever evidence there is;
- **suspect** labelled covers: the engine confidently disagrees with the genre they are filed
  under. The primary image signal (the fastai head: the first registered signal) and the KNN vote
  agree on another genre, that genre is not one the cover is filed under, and the engine's
  confidence in it is at least `min_confidence`.

The engine's prediction is the mean of the distributions of every signal that has evidence for
the cover (each registered genre signal, the head and, when registered, a text or fused model,
and the KNN vote shares), over the catalog's genres; its confidence is the top share. A signal
with no evidence for a cover (an all-zero row, as the text model gives a cover without words, or
a vote missing because the cover is not indexed) is left out of the mean, not counted as zero.

The CSV columns are documented in `CSV_COLUMNS` (and the README); one `<signal>_genre`,
`<signal>_confidence` and `<signal>_top` triple follows for each registered genre signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coverlens.records import Hit
from coverlens.sources import cover_name

if TYPE_CHECKING:
    import numpy as np

UNLABELLED, SUSPECT = "unlabelled", "suspect"
TOP_SHOWN = 3  # genres listed in a `*_top` column
NEIGHBOURS_SHOWN = 3  # neighbours listed in the `neighbours` column

# name -> meaning; the README's table is this one
CSV_COLUMNS: dict[str, str] = {
    "kind": "unlabelled (the cover has no genre) or suspect (filed under a genre the engine confidently doubts)",
    "path": "the file holding the cover, relative to the library root",
    "source": "where the picture is in that file: file (an image file) or a tag frame such as APIC:0",
    "cover": "path and source as people read them",
    "id": "the cover's id (md5 of the picture's bytes)",
    "genre": "the genre it is filed under now (empty when unlabelled)",
    "suggested_genre": "the engine's prediction",
    "confidence": "its share in the engine's mean of the signals (0-1)",
    "signals": "the signals that had evidence for the cover, e.g. head+vote",
    "vote_genre": "the genre the k nearest labelled covers vote for (similarity-weighted)",
    "vote_share": "that genre's share of the vote (0-1)",
    "neighbours": "the closest labelled covers that voted: genre and similarity",
    "title": "album or book title, where the library has one",
    "creator": "artist or author, where the library has one",
}
SIGNAL_COLUMNS = ("genre", "confidence", "top")  # per registered signal: <name>_genre, ...


@dataclass
class CoverFacts:
    """What the catalog says about one cover."""

    id: str
    path: str
    source: str
    genre: str  # "" when unlabelled
    genres: str = ""  # every genre it is filed under, "a|b"
    title: str = ""
    creator: str = ""


@dataclass
class Suggestion:
    kind: str
    cover: CoverFacts
    suggested_genre: str
    confidence: float
    used: list[str]  # signals with evidence, in order
    signals: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # name -> top genres
    vote_share: float | None = None
    vote_genre: str = ""
    neighbours: list[Hit] = field(default_factory=list)

    def row(self, signal_names: Sequence[str]) -> dict[str, Any]:
        """One CSV row: the documented columns, then each signal's genre, confidence and top genres."""
        c = self.cover
        row: dict[str, Any] = {
            "kind": self.kind, "path": c.path, "source": c.source, "cover": cover_name(c.path, c.source),
            "id": c.id, "genre": c.genre, "suggested_genre": self.suggested_genre,
            "confidence": round(self.confidence, 4), "signals": "+".join(self.used),
            "vote_genre": self.vote_genre, "vote_share": "" if self.vote_share is None else round(self.vote_share, 4),
            "neighbours": "; ".join(f"{h.genre} {h.similarity:.3f}" for h in self.neighbours[:NEIGHBOURS_SHOWN]),
            "title": c.title, "creator": c.creator,
        }
        for name in signal_names:
            top = self.signals.get(name, [])
            row[f"{name}_genre"] = top[0][0] if top else ""
            row[f"{name}_confidence"] = round(top[0][1], 4) if top else ""
            row[f"{name}_top"] = "; ".join(f"{g} {s:.2f}" for g, s in top)
        return row


def columns(signal_names: Sequence[str]) -> list[str]:
    return [*CSV_COLUMNS, *(f"{name}_{part}" for name in signal_names for part in SIGNAL_COLUMNS)]


def _has_evidence(row: np.ndarray) -> bool:
    import numpy as np

    return bool(np.all(np.isfinite(row)) and row.sum() > 0)


def _top(row: np.ndarray, classes: Sequence[str], n: int = TOP_SHOWN) -> list[tuple[str, float]]:
    import numpy as np

    order = np.argsort(-row, kind="stable")[:n]
    return [(classes[i], float(row[i])) for i in order if row[i] > 0]


def suggest_genres(
    covers: Sequence[CoverFacts],
    classes: Sequence[str],
    signals: Mapping[str, np.ndarray],
    vote: np.ndarray | None,
    neighbours: Mapping[int, list[Hit]] | None = None,
    *,
    primary: str | None = None,
    min_confidence: float = 0.6,
) -> list[Suggestion]:
    """Suggestions for `covers` from the evidence, row i of every array being covers[i].

    `signals`: name -> (n, len(classes)) probabilities over `classes` (NaN or all-zero rows: no
    evidence for that cover); `vote`: (n, len(classes)) KNN vote shares (same convention);
    `neighbours`: row -> the neighbours that voted. `primary` names the image signal that must
    agree with the vote before a labelled cover is a suspect (default: the first signal).
    Unlabelled covers first (most confident first), then suspects (most confident first).
    """
    import numpy as np

    n = len(covers)
    arrays = dict(signals)
    for name, array in arrays.items():
        if array.shape != (n, len(classes)):
            raise ValueError(f"signal {name}: shape {array.shape}, expected {(n, len(classes))}")
    if vote is not None and vote.shape != (n, len(classes)):
        raise ValueError(f"vote: shape {vote.shape}, expected {(n, len(classes))}")
    primary = primary if primary is not None else next(iter(arrays), None)
    found: list[Suggestion] = []
    for i, cover in enumerate(covers):
        parts, used, tops = [], [], {}
        for name, array in arrays.items():
            if _has_evidence(array[i]):
                parts.append(array[i] / array[i].sum())
                used.append(name)
                tops[name] = _top(array[i], classes)
        vote_row = vote[i] if vote is not None and _has_evidence(vote[i]) else None
        if vote_row is not None:
            parts.append(vote_row / vote_row.sum())
            used.append("vote")
        if not parts:
            if cover.genre:
                continue
            found.append(Suggestion(UNLABELLED, cover, "", 0.0, []))  # no evidence at all: said, not guessed
            continue
        engine = np.mean(parts, axis=0)
        best = int(np.argmax(engine))
        suggestion = Suggestion(UNLABELLED if not cover.genre else SUSPECT, cover, classes[best],
                                float(engine[best]), used, tops)
        if vote_row is not None:
            voted = int(np.argmax(vote_row))
            suggestion.vote_genre, suggestion.vote_share = classes[voted], float(vote_row[voted] / vote_row.sum())
            suggestion.neighbours = list((neighbours or {}).get(i, []))
        if cover.genre and not _is_suspect(suggestion, cover, primary, min_confidence):
            continue
        found.append(suggestion)
    found.sort(key=lambda s: (s.kind != UNLABELLED, -s.confidence, s.cover.path, s.cover.source))
    return found


def _is_suspect(s: Suggestion, cover: CoverFacts, primary: str | None, min_confidence: float) -> bool:
    filed = {cover.genre, *(g for g in cover.genres.split("|") if g)}
    head = s.signals.get(primary or "", [])
    return (s.suggested_genre not in filed and s.confidence >= min_confidence and bool(head)
            and head[0][0] == s.suggested_genre and s.vote_genre == s.suggested_genre)

