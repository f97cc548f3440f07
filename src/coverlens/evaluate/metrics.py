"""Pure metrics over label arrays and probability matrices (no I/O, no models).

Conventions, chosen so that every method is scored the same way:
- the prediction is the arg-max of a row (ties: the lowest class index, as numpy does);
- top-k breaks ties at random, in expectation: a true class tied with others for the last
  places counts the share of those places it would get (a KNN vote leaves many classes at 0,
  and the chance row ties every genre when the train split is balanced);
- macro-F1 averages over the genres present in the test labels: a genre with no test cover
  has no recall to measure, and the average does not change with what a method predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from coverlens.errors import ArgumentError, WorkspaceError

if TYPE_CHECKING:
    import numpy as np

TOP_K = 3


@dataclass(frozen=True)
class GenreMetrics:
    precision: float
    recall: float
    f1: float
    support: int  # test covers of this genre


@dataclass(frozen=True)
class Metrics:
    n: int
    accuracy: float
    top3: float | None  # None when there are no more than 3 genres (top-3 would say nothing)
    macro_f1: float
    per_genre: dict[str, GenreMetrics]
    confusion: list[list[int]]  # rows: true class, columns: predicted class (all classes)


def _check(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> None:
    if proba.ndim != 2 or proba.shape != (len(y_true), n_classes):
        raise ArgumentError(f"probabilities must be ({len(y_true)}, {n_classes}), got {proba.shape}")
    if len(y_true) == 0:
        raise WorkspaceError("no held-out covers to score: the catalog's test split is empty")
    if y_true.min() < 0 or y_true.max() >= n_classes:
        raise ArgumentError(f"labels must lie in 0..{n_classes - 1}")


def predictions(proba: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.argmax(proba, axis=1)


def top_k_accuracy(y_true: np.ndarray, proba: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the k best (expected value under random tie-breaks)."""
    import numpy as np

    y_true = np.asarray(y_true)
    true_scores = proba[np.arange(len(y_true)), y_true][:, None]
    above = (proba > true_scores).sum(axis=1)
    tied = (proba == true_scores).sum(axis=1)  # the true class included
    return float(np.mean(np.clip((k - above) / tied, 0.0, 1.0)))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    import numpy as np

    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_genre_scores(matrix: np.ndarray, classes: list[str]) -> dict[str, GenreMetrics]:
    """Precision/recall/F1 per genre with test support, from a confusion matrix (0 where undefined)."""
    scores: dict[str, GenreMetrics] = {}
    for index, genre in enumerate(classes):
        support = int(matrix[index].sum())
        if support == 0:
            continue
        hits = float(matrix[index, index])
        predicted = float(matrix[:, index].sum())
        precision = hits / predicted if predicted else 0.0
        recall = hits / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[genre] = GenreMetrics(precision, recall, f1, support)
    return scores


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> Metrics:
    """All metrics of one method: `proba` is (n_test, len(classes)), `y_true` class indices."""
    import numpy as np

    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    _check(y_true, proba, len(classes))
    y_pred = predictions(proba)
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    per_genre = per_genre_scores(matrix, classes)
    return Metrics(
        n=len(y_true),
        accuracy=float(np.mean(y_pred == y_true)),
        top3=top_k_accuracy(y_true, proba, TOP_K) if len(classes) > TOP_K else None,
        macro_f1=float(np.mean([m.f1 for m in per_genre.values()])),
        per_genre=per_genre,
        confusion=matrix.tolist(),
    )
