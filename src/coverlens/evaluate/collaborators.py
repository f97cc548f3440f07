"""The one factory that loads the real evaluation collaborators (torch, fastai, open_clip only here).

Each loader turns "cannot have it" (no trained model, no ImageNet weights, no CLIP weights, a
module not installed) into a reason string for the report, never into a crash or a made-up row.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coverlens.errors import CoverlensError
from coverlens.evaluate.methods import HEAD, KNN_CLIP, KNN_FINETUNED, KNN_IMAGENET

if TYPE_CHECKING:
    from coverlens.embedders import Embedder
    from coverlens.workspace import Workspace


@dataclass
class Collaborators:
    classifier: Any | None = None
    imagenet_embedder: Embedder | None = None
    finetuned_embedder: Embedder | None = None
    clip_embedder: Embedder | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # method slug -> why it is missing

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `run_evaluation`."""
        return {"classifier": self.classifier, "imagenet_embedder": self.imagenet_embedder,
                "finetuned_embedder": self.finetuned_embedder, "clip_embedder": self.clip_embedder,
                "unavailable": dict(self.unavailable)}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise CoverlensError(f"{name} cannot be imported ({exc})") from exc


def build_collaborators(workspace: Workspace, *, classifier: bool = True, imagenet: bool = True,
                        clip: bool = True) -> Collaborators:
    """Load what can be loaded; what cannot gets a reason in `unavailable`."""
    from coverlens.embedders.factory import NO_MODEL, clip_embedder, has_model

    found = Collaborators()
    if classifier and not has_model(workspace):  # say so without importing fastai
        found.unavailable[HEAD.slug] = found.unavailable[KNN_FINETUNED.slug] = NO_MODEL
    elif classifier:
        try:
            found.classifier = _module("coverlens.classifier").load_classifier(workspace)
        except CoverlensError as exc:
            found.unavailable[HEAD.slug] = str(exc)
            found.unavailable[KNN_FINETUNED.slug] = f"no fine-tuned backbone: {exc}"
        else:
            try:
                found.finetuned_embedder = found.classifier.embedder()
            except CoverlensError as exc:
                found.unavailable[KNN_FINETUNED.slug] = str(exc)
    else:
        found.unavailable[HEAD.slug] = found.unavailable[KNN_FINETUNED.slug] = "not requested"
    if imagenet:
        try:
            backbone = _module("coverlens.embedders.backbone")
            found.imagenet_embedder = backbone.ImagenetBackboneEmbedder(arch="mobilenet_v2", pretrained=True)
        except CoverlensError as exc:
            found.unavailable[KNN_IMAGENET.slug] = str(exc)
    else:
        found.unavailable[KNN_IMAGENET.slug] = "not requested"
    if clip:
        try:
            found.clip_embedder, reason = clip_embedder()
        except ImportError as exc:
            found.clip_embedder, reason = None, f"coverlens.embedders.clip cannot be imported ({exc})"
        if found.clip_embedder is None:
            found.unavailable[KNN_CLIP.slug] = reason
    else:
        found.unavailable[KNN_CLIP.slug] = "--no-clip given"
    return found
