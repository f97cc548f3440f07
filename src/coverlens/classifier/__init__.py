"""The fastai genre classifier: train, export, load, predict.

Public API: `TrainConfig`, `TrainResult`, `train_classifier`, `load_classifier`, `Classifier`,
`Prediction`, `predict_files`. Importing this package does not import torch or fastai; the
heavy names are loaded on first use.

Modules: config (settings, torch-free), arch (which CNN, fastai registration), data (pixel
cache; the resize/normalise path itself is `coverlens.preprocess`), loader (fastai loaders over
memory), callbacks, train, model_file (export, sidecar, verified load), predict (Classifier, records).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from coverlens.classifier.config import TrainConfig, TrainResult

if TYPE_CHECKING:
    from coverlens.classifier.predict import Classifier, Prediction, load_classifier, predict_files
    from coverlens.classifier.train import train_classifier

_LAZY = {
    "train_classifier": "coverlens.classifier.train",
    "load_classifier": "coverlens.classifier.predict",
    "Classifier": "coverlens.classifier.predict",
    "Prediction": "coverlens.classifier.predict",
    "predict_files": "coverlens.classifier.predict",
}

__all__ = ["Classifier", "Prediction", "TrainConfig", "TrainResult", "load_classifier", "predict_files",
           "train_classifier"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
