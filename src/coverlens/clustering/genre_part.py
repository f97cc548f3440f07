"""The genre part of a feature space: each cover's genre probabilities, predicted out of fold.

The stored image vectors and the OCR text both carry some genre signal, buried among everything
else a cover shows (album-covers-5's image vectors alone: 4 clusters, NMI 0.01 in the issue's probe).
A linear classifier per part (logistic regression: seconds, no trained model needed) is fitted on the
covers that have a genre, in K folds, so every cover's probabilities come from classifiers that
never saw its own genre; covers with no genre (unlabelled) get those of a classifier fitted on all
labelled covers. The parts are fused log-linearly (the text part only where a cover has text).

Appended to the image and text parts, these probabilities pull covers of one genre together
without erasing the styles inside it. What it buys and costs is measured in README "Clusters"
(benchmarks/bench_cluster_spaces.py). Where too few covers have a genre, there is no genre part
(`None`) and the space falls back to the unsupervised parts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

FOLDS = 5
MIN_LABELLED = 50  # fewer covers with a genre: no genre part
MIN_PER_GENRE = 2  # a genre with fewer covers is left out of the classifiers (its covers are predicted)
FLOOR = 1e-4  # a probability floor before logs: one part's certainty cannot veto the other's


def _classifier(x: Any, seed: int | None) -> Any:
    """Logistic regression: lbfgs on the dense image part (calibrated probabilities; SGD's were too
    sure of themselves and lost NMI on album-covers-5), SGD with log loss on the wide sparse text."""
    from scipy.sparse import issparse
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    if issparse(x):
        return SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=50, tol=1e-3, random_state=seed or 0)
    return LogisticRegression(C=1.0, max_iter=500)


def out_of_fold(x: Any, genres: np.ndarray, train: np.ndarray, classes: list[str], seed: int | None) -> np.ndarray:
    """(n, len(classes)) probabilities: out of fold for `train` rows, from a classifier of all of them
    for the others."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    out = np.zeros((x.shape[0], len(classes)), dtype=np.float32)
    rows = np.flatnonzero(train)
    folds = min(FOLDS, min(Counter(genres[rows].tolist()).values()))

    def fit_predict(fit_rows: np.ndarray, predict_rows: np.ndarray) -> None:
        with warnings.catch_warnings():  # a capped number of epochs is the point: seconds, not minutes
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = _classifier(x, seed).fit(x[fit_rows], genres[fit_rows])
        columns = [classes.index(c) for c in model.classes_]
        out[np.ix_(predict_rows, columns)] = model.predict_proba(x[predict_rows])

    with threadpool_limits(1):  # small fits: BLAS threads only fight over the cores
        for fit_at, predict_at in StratifiedKFold(folds, shuffle=True, random_state=seed or 0).split(rows,
                                                                                                  genres[rows]):
            fit_predict(rows[fit_at], rows[predict_at])
        rest = np.flatnonzero(~train)
        if len(rest):
            fit_predict(rows, rest)
    return out


def genre_probabilities(image: np.ndarray, text: Any | None, has_text: np.ndarray, genres: Sequence[str],
                        seed: int | None) -> np.ndarray | None:
    """Fused out-of-fold genre probabilities (n, genres), or None when too few covers have a genre.

    `image`: dense image features (n, d); `text`: the covers' text features (sparse TF-IDF rows for
    the covers where `has_text`, in order), or None.
    """
    import numpy as np

    labels = np.array([str(g or "") for g in genres])
    counts = Counter(g for g in labels.tolist() if g)
    classes = sorted(g for g, c in counts.items() if c >= MIN_PER_GENRE)
    train = np.isin(labels, classes)
    if len(classes) < 2 or train.sum() < MIN_LABELLED:
        return None
    scaled = (image - image.mean(axis=0)) / (image.std(axis=0) + 1e-6)
    log_p = np.log(out_of_fold(scaled, labels, train, classes, seed) + FLOOR)
    text_rows = np.flatnonzero(has_text)
    with_text = Counter(labels[text_rows][train[text_rows]].tolist())
    if text is not None and sum(with_text.values()) >= MIN_LABELLED and len(with_text) == len(classes) \
            and min(with_text.values()) >= MIN_PER_GENRE:
        log_p[text_rows] += np.log(out_of_fold(text, labels[text_rows], train[text_rows], classes, seed) + FLOOR)
    p = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
