"""Late fusion of genre signals (pure numpy): the image head, the text model, optionally the KNN vote.

    log p_fused(c) = w_head * log p_head(c) + w_text * log p_text(c) + w_knn * log p_knn(c)   (+ const)

A term whose mask is False for a cover (the text model where nothing was read) is dropped for that
cover; a cover with no text is therefore scored by the head (and vote) alone. The weights come from
a small grid that includes w_head = 0 (lean fully on the text where the image adds little) and
w_text = 0 (ignore text that does not help); the grid is searched for the best validation accuracy,
ties broken by validation log-loss, then by the weights closest to the head alone.

The best of ~35 grid points on a few hundred validation covers (a few per genre on a 33-genre set)
is an optimistic score: noise alone can lift a text weight above zero. So the choice is checked on
covers it did not see (k-fold over the validation covers: weights chosen on the other folds score
each fold) and kept only where that beats the head alone; otherwise the fusion is the head alone.

Where the validation predictions come from (no leakage, never the test split):
- head: the fastai model's own validation covers, the seeded stratified slice of the train split it
  held out for early stopping (`coverlens.classifier.train.valid_mask` with the seed and fraction in
  the model sidecar; `validation_ids` recomputes it and checks it against the sidecar's digest).
  The head never fitted its weights on them (they only chose when to stop).
- text: out-of-fold predictions over the train split (`model.out_of_fold_proba`), so the text model
  is never scored on a cover it was fitted on; only the rows of the head's validation covers are used.
- KNN vote: neighbours among train covers, the cover itself excluded.
Only these validation rows reach `choose_weights`; test labels are never read when fitting.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-4  # floor for probabilities: one signal's 0 must not veto a genre the others support
HEAD_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
TEXT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
KNN_WEIGHTS = (0.0, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Term:
    """One signal over n covers: probabilities (n, k) in a shared class order, and where it speaks."""

    proba: np.ndarray
    mask: np.ndarray | None = None  # None: present for every cover

    def present(self) -> np.ndarray:
        n = self.proba.shape[0]
        return np.ones(n, dtype=bool) if self.mask is None else np.asarray(self.mask, dtype=bool)


@dataclass(frozen=True)
class FusionWeights:
    weights: dict[str, float]
    validation: dict[str, float] = field(default_factory=dict)  # accuracy, log_loss, covers, per-term rows

    def to_dict(self) -> dict[str, object]:
        return {"weights": dict(self.weights), "validation": dict(self.validation)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FusionWeights:
        return cls({k: float(v) for k, v in dict(data["weights"]).items()},  # type: ignore[arg-type]
                   {k: float(v) for k, v in dict(data.get("validation", {})).items()})  # type: ignore[arg-type]

    @classmethod
    def head_only(cls) -> FusionWeights:
        return cls({"head": 1.0})


def _log(proba: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0)
    return np.log(clipped / clipped.sum(axis=1, keepdims=True))


def fuse(terms: Mapping[str, Term], weights: Mapping[str, float]) -> np.ndarray:
    """Fused probabilities (n, k). The head term is required; others are optional and masked.

    A cover where every weighted term is absent or weighted 0 gets the head's own probabilities.
    """
    head = terms["head"]
    n, k = head.proba.shape
    logits = np.zeros((n, k))
    spoke = np.zeros(n, dtype=bool)
    for name, term in terms.items():
        w = float(weights.get(name, 0.0))
        if w == 0.0:
            continue
        present = term.present()
        logits[present] += w * _log(term.proba[present])
        spoke |= present
    logits -= logits.max(axis=1, keepdims=True)
    fused = np.exp(logits)
    fused /= fused.sum(axis=1, keepdims=True)
    silent = ~spoke
    fused[silent] = np.asarray(head.proba, dtype=np.float64)[silent]
    return fused


def accuracy(proba: np.ndarray, labels: np.ndarray) -> float:
    return float((proba.argmax(axis=1) == labels).mean()) if len(labels) else 0.0


def log_loss(proba: np.ndarray, labels: np.ndarray) -> float:
    if not len(labels):
        return 0.0
    picked = np.clip(proba[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.log(picked).mean())


def weight_grid(names: Iterable[str]) -> list[dict[str, float]]:
    """Every combination of the per-term grids; all-zero is left out."""
    grids = {"head": HEAD_WEIGHTS, "text": TEXT_WEIGHTS, "knn": KNN_WEIGHTS}
    names = [n for n in names if n in grids]
    combos = []
    for values in itertools.product(*(grids[n] for n in names)):
        if any(values):
            combos.append(dict(zip(names, values, strict=True)))
    return combos


CHECK_FOLDS = 5


def _distance_from_head(w: Mapping[str, float]) -> float:
    return abs(w.get("head", 0.0) - 1.0) + sum(abs(v) for k, v in w.items() if k != "head")


def _best(terms: Mapping[str, Term], labels: np.ndarray, grid: list[dict[str, float]]
          ) -> tuple[dict[str, float], float, float]:
    """(weights, accuracy, log-loss) of the grid point with the best accuracy on these covers."""
    best_key: tuple[float, float, float] | None = None
    best: dict[str, float] = {"head": 1.0}
    best_scores = (0.0, math.inf)
    for weights in grid:
        fused = fuse(terms, weights)
        acc, loss = accuracy(fused, labels), log_loss(fused, labels)
        key = (-acc, loss, _distance_from_head(weights))
        if best_key is None or key < best_key:
            best_key, best, best_scores = key, dict(weights), (acc, loss)
    return best, best_scores[0], best_scores[1]


def _subset(terms: Mapping[str, Term], rows: np.ndarray) -> dict[str, Term]:
    return {name: Term(t.proba[rows], None if t.mask is None else np.asarray(t.mask)[rows])
            for name, t in terms.items()}


def held_out_accuracy(terms: Mapping[str, Term], labels: np.ndarray, grid: list[dict[str, float]],
                      folds: int = CHECK_FOLDS, seed: int = 0) -> float:
    """Accuracy of choosing the weights, scored on covers the choice did not see: each of `folds`
    seeded folds of these covers is fused with the weights chosen on the other folds."""
    n = len(labels)
    folds = min(folds, n)
    if folds < 2:
        return 0.0
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    correct = 0
    for fold in range(folds):
        held = fold_of == fold
        weights, _, _ = _best(_subset(terms, ~held), labels[~held], grid)
        correct += int((fuse(_subset(terms, held), weights).argmax(axis=1) == labels[held]).sum())
    return correct / n


def choose_weights(terms: Mapping[str, Term], labels: Sequence[int] | np.ndarray,
                   grid: list[dict[str, float]] | None = None) -> FusionWeights:
    """The grid point with the best accuracy on these (validation) covers, kept only if choosing it
    beats the head alone on held-out folds (else the head alone); see the module docstring."""
    labels = np.asarray(labels, dtype=np.int64)
    if "head" not in terms:
        raise ValueError("fusion needs the head term")
    grid = grid or weight_grid(terms)
    best, acc, loss = _best(terms, labels, grid)
    head_proba = terms["head"].proba
    head_acc = accuracy(head_proba, labels)
    report = {"accuracy": acc, "log_loss": loss, "covers": float(len(labels)),
              "head_accuracy": head_acc, "head_log_loss": log_loss(head_proba, labels)}
    if any(w for name, w in best.items() if name != "head"):
        checked = held_out_accuracy(terms, labels, grid)
        report["held_out_accuracy"] = checked
        if checked <= head_acc:  # the other signals did not earn their place: the head alone
            best = {name: 1.0 if name == "head" else 0.0 for name in terms}
            report.update(accuracy=head_acc, log_loss=report["head_log_loss"], fell_back_to_head=1.0)
    for name, term in terms.items():
        report[f"{name}_present"] = float(term.present().mean()) if len(labels) else 0.0
    return FusionWeights(best, report)
