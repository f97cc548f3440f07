"""Feature spaces to cluster in: the stored image vectors, the covers' OCR text, or both joined.

- image: L2-normalised vectors, through PCA to `pre_pca` dimensions when wider (UMAP's cost grows
  with the dimension; 64 keeps the neighbourhoods, see README "Clusters").
- text: TF-IDF of character 2-5-grams (the OCR drops spaces between words, so words are not a
  reliable unit), reduced by truncated SVD to 100 dimensions (LSA), L2-normalised. Covers with no
  text are left out of the clustering (noise, marked "no text").
- image+text: each part reduced to 100 dimensions and L2-normalised, then joined; the text part
  weighted by `text_weight`. Covers with no text keep their image part.

Texts come in as a mapping `cover id -> text` or a callable `ids -> mapping` (the OCR text store).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coverlens.embedders import l2_normalise
from coverlens.errors import CoverlensError

if TYPE_CHECKING:
    import numpy as np

    from coverlens.clustering.params import ClusterParams

TextSource = Mapping[str, str] | Callable[[Sequence[str]], Mapping[str, str]]
PART_DIM = 100
MIN_TEXT_COVERS = 10
_SPACES = re.compile(r"\s+")


def texts_for(ids: Sequence[str], source: TextSource | None) -> list[str]:
    """One cleaned text per id ('' when the cover has none)."""
    if source is None:
        return [""] * len(ids)
    found = source(list(ids)) if callable(source) else source
    return [_SPACES.sub(" ", str(found.get(i) or "")).strip().lower() for i in ids]


@dataclass
class Features:
    x: np.ndarray  # (rows, d) float32: what the reducer sees
    usable: np.ndarray  # (n,) bool: covers that have a signal in this space; x holds only those
    transform: Callable[[np.ndarray], np.ndarray] | None  # new image vectors -> x's space (image only)


def _pca(x: np.ndarray, dim: int | None, seed: int | None) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    if dim is None or x.shape[1] <= dim or len(x) <= dim:
        return x, lambda v: v
    from sklearn.decomposition import PCA

    pca = PCA(n_components=dim, random_state=seed).fit(x)
    return pca.transform(x).astype("float32"), lambda v: pca.transform(v).astype("float32")


def text_matrix(texts: Sequence[str], seed: int | None, dim: int = PART_DIM) -> np.ndarray:
    """LSA of character 2-5-gram TF-IDF: (n, <= dim), L2-normalised rows (zero rows stay zero)."""
    import numpy as np
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    has = np.array([bool(t) for t in texts])
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(2, 5), min_df=2, sublinear_tf=True, dtype=np.float32)
    sparse = tfidf.fit_transform([t for t, h in zip(texts, has, strict=True) if h])
    k = max(1, min(dim, sparse.shape[1] - 1, sparse.shape[0] - 1))
    lsa = TruncatedSVD(n_components=k, random_state=seed).fit_transform(sparse)
    out = np.zeros((len(texts), k), dtype=np.float32)
    out[has] = l2_normalise(lsa)
    return out


def build_features(vectors: np.ndarray, texts: Sequence[str], params: ClusterParams) -> Features:
    import numpy as np

    space, n = params.space, len(vectors)
    if space == "image":
        x, transform = _pca(l2_normalise(vectors), params.pre_pca, params.seed)
        return Features(x, np.ones(n, dtype=bool), lambda v: transform(l2_normalise(v)))
    has = np.array([bool(t) for t in texts], dtype=bool)
    if has.sum() < MIN_TEXT_COVERS:
        raise CoverlensError(f"the {space!r} space needs the covers' OCR text, but only {int(has.sum())} of {n} "
                             "covers have any: read their text first, or cluster with --space image")
    text = text_matrix(texts, params.seed)
    if space == "text":
        return Features(text[has], has, None)
    if space == "image+text":
        image, _ = _pca(l2_normalise(vectors), PART_DIM, params.seed)
        joined = np.hstack([l2_normalise(image), params.text_weight * text]).astype(np.float32)
        return Features(joined, np.ones(n, dtype=bool), None)
    raise CoverlensError(f"unknown feature space {space!r}; choose image, text or image+text")
