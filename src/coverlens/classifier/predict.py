"""The loaded classifier: genre probabilities for cover images, and records for the edges."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.defaults import MODEL_BATCH_SIZE
from coverlens.errors import ImageError, ModelError
from coverlens.images import open_image
from coverlens.preprocess import batched, images_to_input, torch_threads, tta_views
from coverlens.records import GenreScore
from coverlens.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

BATCH_SIZE = MODEL_BATCH_SIZE


class Classifier:
    """A fine-tuned fastai model ready for inference (build it with `load_classifier`)."""

    def __init__(self, model: torch.nn.Module, classes: list[str], identity: dict[str, Any],
                 mean: torch.Tensor, std: torch.Tensor, sidecar: dict[str, Any] | None = None,
                 device: torch.device | str | None = None) -> None:
        import torch

        torch.set_num_threads(torch_threads())
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.classes = list(classes)
        self.identity = dict(identity)
        self.image_size = int(identity["image_size"])
        self.mean, self.std = mean.flatten().float(), std.flatten().float()
        self.sidecar = sidecar or {}
        # The last batch's answer, per thread: a fused signal asks for the head's probabilities of the
        # very images the head was just given (one evaluation pass, one search), so it costs nothing twice.
        self._last = threading.local()

    def to_input(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Covers as the model saw them in training: squashed to its size, ImageNet-normalised."""
        return images_to_input(images, self.image_size, self.mean, self.std, self.device)

    def predict_proba(self, images: Sequence[Image.Image], tta: bool = False) -> np.ndarray:
        """(n, n_classes) float32 probabilities, columns in `classes` order; `tta` averages the
        cover with a centre zoom and two corner crops."""
        import numpy as np
        import torch

        key = (tuple(map(id, images)), tta)
        last = getattr(self._last, "batch", None)
        if last is not None and last[0] == key:
            return last[2].copy()
        out = []
        with torch.inference_mode():
            for chunk in batched(images, BATCH_SIZE):
                batch = self.to_input(chunk)
                views = tta_views(batch) if tta else [batch]
                probs = sum(torch.softmax(self.model(v).float(), dim=1) for v in views) / len(views)
                out.append(probs.cpu().numpy())
        proba = np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(self.classes)), np.float32)
        # The images are kept with their ids, so an id cannot be reused by a new image while remembered.
        self._last.batch = (key, list(images), proba)
        return proba.copy()


def _normalize_stats(learn: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean/std the exported learner normalises with: preprocessing travels with the weights."""
    from fastai.vision.all import Normalize

    for tfm in learn.dls.after_batch.fs:
        if isinstance(tfm, Normalize):
            return tfm.mean, tfm.std
    raise ModelError("the exported model has no Normalize transform; re-run `coverlens train`")


def load_classifier(workspace: Workspace, device: str | None = None) -> Classifier:
    """Load and verify the workspace's model (ModelError when missing, changed or incompatible)."""
    from coverlens.classifier.model_file import load_verified

    learn, sidecar = load_verified(workspace)
    mean, std = _normalize_stats(learn)
    identity = {"sha256": sidecar["model_sha256"], "arch": sidecar["arch"],
                "image_size": int(sidecar["image_size"])}
    return Classifier(learn.model, sidecar["classes"], identity, mean, std, sidecar, device)


@dataclass
class Prediction:
    """The head's answer for one file: ranked genres, or why the file could not be read."""

    path: str
    scores: list[GenreScore] = field(default_factory=list)
    error: str | None = None

    @property
    def genre(self) -> str | None:
        return self.scores[0].genre if self.scores else None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "genre": self.genre, "error": self.error,
                "scores": [{"genre": s.genre, "probability": s.score} for s in self.scores]}


def top_k(probabilities: np.ndarray, classes: Sequence[str], k: int) -> list[GenreScore]:
    if k < 1:
        from coverlens.errors import ArgumentError

        raise ArgumentError(f"top-k must be at least 1, got {k}")
    order = probabilities.argsort()[::-1][:k]
    return [GenreScore(classes[i], float(probabilities[i])) for i in order]


def predict_files(classifier: Classifier, paths: Sequence[Path | str], *, k: int = 3,
                  tta: bool = False) -> list[Prediction]:
    """One `Prediction` per path, in order; unreadable files get an error, the others a ranking."""
    records = [Prediction(str(p)) for p in paths]
    for chunk in batched(range(len(paths)), BATCH_SIZE):
        images, owners = [], []
        for i in chunk:
            try:
                images.append(open_image(paths[i]))
                owners.append(i)
            except ImageError as exc:
                records[i].error = str(exc)
        if images:
            for i, probs in zip(owners, classifier.predict_proba(images, tta=tta), strict=True):
                records[i].scores = top_k(probs, classifier.classes, k)
    return records
