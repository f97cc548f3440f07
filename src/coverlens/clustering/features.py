"""Feature spaces to cluster in: the stored image vectors, the covers' OCR text, or both joined.

- image: L2-normalised vectors, through PCA to `pre_pca` dimensions when wider (UMAP's cost grows
  with the dimension; 64 keeps the neighbourhoods, see README "Clusters").
- text: TF-IDF of character 2-5-grams (the OCR drops spaces between words, so words are not a
  reliable unit), reduced by truncated SVD to 100 dimensions (LSA), L2-normalised. Covers with no
  text are left out of the clustering (noise, marked "no text").
- image+text: each part reduced to 100 dimensions and L2-normalised, then joined; the text part
  weighted by `text_weight`. Covers with no text keep their image part.
- image+genre, image+text+genre: those parts and, weighted by `genre_weight`, each cover's genre
  probabilities predicted out of fold from the parts (genre_part.py). Where too few covers have a
  genre, the genre part is left out and the space says so (`Features.space`).

Texts come in as a mapping `cover id -> text` or a callable `ids -> mapping` (the OCR text store).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coverlens.clustering.genre_part import MIN_LABELLED
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
    space: str = ""  # the space built ("" = the one asked for); a genre space without its genre part says so


def _pca(x: np.ndarray, dim: int | None, seed: int | None) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    if dim is None or x.shape[1] <= dim or len(x) <= dim:
        return x, lambda v: v
    from sklearn.decomposition import PCA

    pca = PCA(n_components=dim, random_state=seed).fit(x)
    return pca.transform(x).astype("float32"), lambda v: pca.transform(v).astype("float32")


def text_tfidf(texts: Sequence[str]) -> Any:
    """Character 2-5-gram TF-IDF (sparse) of the covers that have text, in order."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(2, 5), min_df=2, sublinear_tf=True, dtype=np.float32)
    return tfidf.fit_transform([t for t in texts if t])


def text_matrix(texts: Sequence[str], seed: int | None, dim: int = PART_DIM, sparse: Any = None) -> np.ndarray:
    """LSA of character 2-5-gram TF-IDF: (n, <= dim), L2-normalised rows (zero rows stay zero)."""
    import numpy as np
    from sklearn.decomposition import TruncatedSVD

    has = np.array([bool(t) for t in texts])
    sparse = text_tfidf(texts) if sparse is None else sparse
    k = max(1, min(dim, sparse.shape[1] - 1, sparse.shape[0] - 1))
    lsa = TruncatedSVD(n_components=k, random_state=seed).fit_transform(sparse)
    out = np.zeros((len(texts), k), dtype=np.float32)
    out[has] = l2_normalise(lsa)
    return out


def _with_genre(parts: list[np.ndarray], image: np.ndarray, sparse: Any, has: np.ndarray,
                genres: Sequence[str] | None, params: ClusterParams, space: str) -> Features:
    """The parts joined, with the genre part when enough covers have a genre (else the space without it)."""
    import numpy as np

    from coverlens.clustering.genre_part import genre_probabilities

    probabilities = None
    if genres is not None and params.genre_weight > 0:
        probabilities = genre_probabilities(image, sparse, has, genres, params.seed)
    if probabilities is None:
        space = space.removesuffix("+genre")
    else:
        parts = [*parts, params.genre_weight * probabilities]
    return Features(np.hstack(parts).astype(np.float32), np.ones(len(image), dtype=bool), None, space)


def build_features(vectors: np.ndarray, texts: Sequence[str], params: ClusterParams,
                   genres: Sequence[str] | None = None) -> Features:
    """The matrix the reducer sees, in `params.space`; `genres` (one per cover, "" for none) feed the
    genre part of the +genre spaces."""
    import numpy as np

    space, n = params.space, len(vectors)
    if space == "image":
        x, transform = _pca(l2_normalise(vectors), params.pre_pca, params.seed)
        return Features(x, np.ones(n, dtype=bool), lambda v: transform(l2_normalise(v)))
    if space == "image+genre":
        image = l2_normalise(_pca(l2_normalise(vectors), PART_DIM, params.seed)[0])
        return _with_genre([image], image, None, np.zeros(n, dtype=bool), genres, params, space)
    has = np.array([bool(t) for t in texts], dtype=bool)
    if has.sum() < MIN_TEXT_COVERS:
        raise CoverlensError(f"the {space!r} space needs the covers' OCR text, but only {int(has.sum())} of {n} "
                             "covers have any: read their text first, or cluster with --space image")
    sparse = text_tfidf(texts)
    text = text_matrix(texts, params.seed, sparse=sparse)
    if space == "text":
        return Features(text[has], has, None)
    image = l2_normalise(_pca(l2_normalise(vectors), PART_DIM, params.seed)[0])
    if space == "image+text":
        joined = np.hstack([image, params.text_weight * text]).astype(np.float32)
        return Features(joined, np.ones(n, dtype=bool), None)
    if space == "image+text+genre":
        return _with_genre([image, params.text_weight * text], image, sparse, has, genres, params, space)
    if space == "genre":  # the fused probabilities alone (the image+text parts only feed the classifiers)
        from coverlens.clustering.genre_part import genre_probabilities

        probabilities = genre_probabilities(image, sparse, has, genres or [""] * n, params.seed)
        if probabilities is None:
            raise CoverlensError(f"the genre space needs covers with a genre (at least {MIN_LABELLED}); "
                                 "cluster with --space image+text")
        return Features(probabilities, np.ones(n, dtype=bool), None)
    raise CoverlensError(f"unknown feature space {space!r}; choose one of image, text, image+text, image+genre, "
                         "image+text+genre")
