"""The words most specific to each cluster, by class-based TF-IDF (c-TF-IDF, as BERTopic labels topics).

All covers of a cluster form one document; a term scores by its frequency in the cluster times
log(1 + A / its frequency in the whole library), A the average number of terms per cluster.

Terms must survive OCR that drops spaces ("COMPLETEWORKS WITHCLARINET"): a term is a run of
letters or digits (3+ characters, not an English stop word), and a long run (over 8 characters)
also gives its 4-8-character pieces, so "jazz" is counted inside "NIGHTJAZZ" and "JAZZCLUB". Each
cover counts a term once. Only words that stand alone on at least two covers are shown ("jazz",
never "azzc"); a word that only ever occurs inside one longer word is not shown (that word is), nor
a piece of a word already shown (nor the reverse).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

TOP_WORDS = 5
MIN_SHARE = 0.03  # a word shown must be on at least this share of the cluster's covers (and 2 covers)
LONG_RUN = 8
PIECES = range(4, 9)
MAX_CANDIDATES = 300
_RUN = re.compile(r"[^\W_]{3,}")


def runs(text: str) -> list[str]:
    """The whole runs of letters or digits: lowercase, stop words and numbers dropped."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [r for r in _RUN.findall(text.lower()) if not r.isdigit() and r not in ENGLISH_STOP_WORDS]


def terms(text: str) -> list[str]:
    """Whole runs and, for long runs, their pieces."""
    out: set[str] = set()
    for run in runs(text):
        out.add(run)
        if len(run) > LONG_RUN:
            out.update(run[i:i + size] for size in PIECES for i in range(len(run) - size + 1))
    return sorted(t for t in out if not t.isdigit())


def standalone_words(texts: Sequence[str]) -> set[str]:
    """Runs that stand alone on at least 2 covers: the only pieces worth showing ("jazz", not "azzc")."""
    seen: dict[str, int] = {}
    for text in texts:
        for run in set(runs(text)):
            seen[run] = seen.get(run, 0) + 1
    return {run for run, covers in seen.items() if covers >= 2}


def _distinct(ranked: Sequence[str], count: Mapping[str, int], top: int) -> list[str]:
    """The best `top` terms, skipping a term that a longer candidate holds on exactly as many covers
    (a piece of one longer word says nothing of its own), and pieces or wholes of a term shown."""
    shown: list[str] = []
    for term in ranked:
        if any(term in s or s in term for s in shown):
            continue
        if any(len(s) > len(term) and term in s and count[s] == count[term] for s in count):
            continue
        shown.append(term)
        if len(shown) == top:
            break
    return shown


def cluster_words(texts: Sequence[str], labels: np.ndarray, *, top: int = TOP_WORDS) -> dict[int, list[str]]:
    """cluster id -> its most specific words (noise, label -1, takes part in the frequencies only)."""
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    if not any(texts):
        return {}
    try:
        counts = CountVectorizer(analyzer=terms, binary=True).fit(texts)
    except ValueError:  # no term in any text
        return {}
    docs = counts.transform(texts)
    vocabulary = counts.get_feature_names_out()
    classes = sorted(set(labels.tolist()))
    rows = np.searchsorted(classes, labels)
    membership = sparse.csr_matrix((np.ones(len(labels)), (rows, np.arange(len(labels)))),
                                   shape=(len(classes), len(labels)))
    per_class = (membership @ docs).toarray()  # covers of each class that hold each term
    totals = per_class.sum(axis=1, keepdims=True)
    average = totals.mean()
    idf = np.log(1 + average / np.maximum(per_class.sum(axis=0), 1))
    scores = per_class / np.maximum(totals, 1) * idf
    sizes = np.bincount(rows, minlength=len(classes))
    known = standalone_words(texts)
    readable = np.array([t in known for t in vocabulary.tolist()], dtype=bool)
    found = {}
    for row, cid in enumerate(classes):
        if cid < 0:
            continue
        enough = (per_class[row] >= max(2, MIN_SHARE * sizes[row])) & readable
        candidates = np.flatnonzero(enough)
        order = candidates[np.argsort(-scores[row, candidates], kind="stable")][:MAX_CANDIDATES]
        count = {str(vocabulary[i]): int(per_class[row, i]) for i in order}
        found[int(cid)] = _distinct(list(count), count, top)
    return found
