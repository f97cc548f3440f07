"""The one place that builds the real embedders from a workspace (tests pass fakes instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coverlens.errors import ModelError

if TYPE_CHECKING:
    from coverlens.embedders import Embedder
    from coverlens.workspace import Workspace

FINETUNED, CLIP = "finetuned", "clip"
EMBEDDER_NAMES = (FINETUNED, CLIP)
NO_MODEL = "no fine-tuned model; run `coverlens train`"


def has_model(workspace: Workspace) -> bool:
    return (workspace.model_dir / "model.json").exists()


def finetuned_embedder(workspace: Workspace) -> Embedder:
    """The fine-tuned backbone of the workspace's classifier, or ModelError saying there is none."""
    if not has_model(workspace):
        raise ModelError(NO_MODEL)
    from coverlens.classifier import load_classifier

    return load_classifier(workspace).embedder()


def clip_embedder(model: str | None = None, pretrained: str | None = None,
                  device: str | None = None) -> tuple[Embedder | None, str]:
    """The OpenCLIP comparator, or None and the reason it cannot be had (never raises for weights)."""
    from coverlens.embedders.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, load_clip_embedder

    loaded = load_clip_embedder(model or DEFAULT_MODEL, pretrained or DEFAULT_PRETRAINED, device)
    return loaded.embedder, loaded.reason or ""
