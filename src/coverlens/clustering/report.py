"""Typed records of a clustering, and how each cluster is summarised for a person.

Agreement with the genres is ARI and NMI (scikit-learn) of the final labels against the primary
genres over ALL covers: noise keeps the label -1 and counts as one more "cluster", so a clustering
that leaves most covers as noise scores low.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAX_EXEMPLARS = 8
NOISE = -1


@dataclass
class ClusterSummary:
    cluster_id: int
    size: int
    dominant_genre: str
    purity: float  # share of the cluster's covers filed under its dominant genre
    genre_mix: dict[str, int]  # genre -> covers, most first
    exemplar_ids: list[str]
    exemplar_paths: list[str]
    words: list[str] = field(default_factory=list)  # most specific words of its covers' text (c-TF-IDF)
    reassigned: int = 0  # noise covers assigned to it by outlier reduction (marked in the labels file)
    merged_from: list[int] = field(default_factory=list)  # HDBSCAN's ids of the small clusters merged into it

    def top_genres(self, n: int = 3) -> str:
        return ", ".join(f"{g} {c}" for g, c in list(self.genre_mix.items())[:n])

    def title(self) -> str:
        """A one-line label: its words, then its dominant genre and purity."""
        genre = f"{self.dominant_genre or '(no genre)'} {self.purity:.0%}"
        return f"{', '.join(self.words[:3])} · {genre}" if self.words else genre


@dataclass
class ClusterReport:
    embedder: str
    n_covers: int
    clusters: list[ClusterSummary]  # largest first; cluster 0 is the largest
    noise_share: float  # share of covers in no cluster, after outlier reduction when it ran
    ari: float  # adjusted Rand index, final labels (noise = one label) vs primary genre
    nmi: float  # normalised mutual information, same convention
    params: dict[str, Any] = field(default_factory=dict)  # the resolved ClusterParams
    seconds: float = 0.0  # features + reduction + clustering + merging + labels, without compile
    space: str = "image"
    noise_share_before: float = 0.0  # share HDBSCAN left as noise, before outlier reduction
    reassigned: int = 0  # covers assigned by outlier reduction
    found_clusters: int = 0  # clusters HDBSCAN found, before merging
    no_signal: int = 0  # covers with nothing to cluster in this space (no text), left as noise
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    compile_seconds: float = 0.0  # umap/numba import and JIT compile paid by this run (0 when warm)
    labels_sha256: str = ""  # of the labels file saved with it: a reader pairs the two files by it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterReport:
        known = {f.name for f in fields(ClusterSummary)}
        clusters = [ClusterSummary(**{k: v for k, v in c.items() if k in known}) for c in data["clusters"]]
        own = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in own}, "clusters": clusters})


def agreement(labels: np.ndarray, genres: Sequence[str]) -> dict[str, float]:
    """ARI and NMI of cluster labels vs genres; noise (-1) is kept as one label."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    truth = list(genres)
    return {"ari": round(float(adjusted_rand_score(truth, labels)), 4),
            "nmi": round(float(normalized_mutual_info_score(truth, labels)), 4)}


def summarise(
    reduced: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    genres: Sequence[str],
    ids: Sequence[str],
    paths: Sequence[str],
    *,
    reassigned: np.ndarray,
    words: Mapping[int, list[str]],
    merged_from: Mapping[int, list[int]],
) -> list[ClusterSummary]:
    """One summary per cluster, largest first. Exemplars are HDBSCAN's own members, strongest and
    most central first (a cover assigned by outlier reduction is never an exemplar)."""
    import numpy as np

    summaries = []
    for cid in sorted(set(labels.tolist()) - {NOISE}):
        members = np.flatnonzero(labels == cid)
        mix = Counter(genres[i] for i in members)
        ranked = sorted(mix.items(), key=lambda item: (-item[1], item[0]))
        own = members[~reassigned[members]]
        own = own if len(own) else members
        centre = reduced[own].mean(axis=0)
        spread = np.linalg.norm(reduced[own] - centre, axis=1)
        order = own[np.lexsort((spread, -probabilities[own]))][:MAX_EXEMPLARS]
        summaries.append(ClusterSummary(
            cluster_id=int(cid), size=len(members), dominant_genre=ranked[0][0],
            purity=round(ranked[0][1] / len(members), 4), genre_mix=dict(ranked),
            exemplar_ids=[ids[i] for i in order], exemplar_paths=[paths[i] for i in order],
            words=list(words.get(int(cid), [])), reassigned=int(reassigned[members].sum()),
            merged_from=sorted(merged_from.get(int(cid), [])),
        ))
    summaries.sort(key=lambda s: (-s.size, s.cluster_id))
    return summaries
