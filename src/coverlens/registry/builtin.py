"""The signals and embedders coverlens ships: the fastai head, the text model and the fused
prediction; the ImageNet baseline body, the fine-tuned backbone and the OpenCLIP comparator."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from coverlens.defaults import BASELINE_K
from coverlens.errors import WeightsError
from coverlens.registry.specs import BuildContext, EmbedderSpec, EvalRow, GenreModel, Option, Registry, SignalSpec
from coverlens.text import signals as text_signals  # light: heavy imports wait for first use

if TYPE_CHECKING:
    from coverlens.embedders import Embedder
    from coverlens.workspace import Workspace

NO_MODEL = "no fine-tuned model; run `coverlens train`"


def has_model(workspace: Workspace) -> bool:
    return (workspace.model_dir / "model.json").exists()


def model_stamp(ctx: BuildContext) -> Hashable:
    """The model sidecar's mtime: `coverlens train` (here or in another process) rewrites it."""
    sidecar = ctx.workspace.model_dir / "model.json"
    return sidecar.stat().st_mtime_ns if sidecar.exists() else None


def _needs_model(ctx: BuildContext) -> str | None:
    return None if has_model(ctx.workspace) else NO_MODEL


def _finetuned(ctx: BuildContext) -> Embedder:
    """The fine-tuned body, projected to at most 512 dimensions by a projection fitted once on the
    train split (its sha256 is part of the identity: see `coverlens.embedders.projection_file`)."""
    from coverlens.embedders.backbone import FinetunedBackboneEmbedder
    from coverlens.embedders.projection_file import projected

    return projected(ctx.workspace, FinetunedBackboneEmbedder(ctx.classifier()))


def _imagenet(ctx: BuildContext) -> Embedder:
    from coverlens.embedders.backbone import ImagenetBackboneEmbedder

    return ImagenetBackboneEmbedder(arch="mobilenet_v2", pretrained=True)


CLIP_UNAVAILABLE = "CLIP comparator unavailable: "


def _clip(ctx: BuildContext) -> Embedder:
    """The CLIP comparator. Unless a model was named, the one the stored CLIP vectors were made
    with, so queries stay comparable with the index."""
    from coverlens.embedders.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, load_clip_embedder

    model, pretrained = ctx.option("clip_model"), ctx.option("clip_pretrained")
    if not (model or pretrained):
        stored = ctx.stored_identity("clip") or {}
        model, pretrained = stored.get("model"), stored.get("pretrained")
    loaded = load_clip_embedder(model or DEFAULT_MODEL, pretrained or DEFAULT_PRETRAINED, ctx.option("device"))
    if loaded.embedder is None:
        raise WeightsError(CLIP_UNAVAILABLE + (loaded.reason or "unknown reason"))
    return loaded.embedder


def _clip_check(ctx: BuildContext) -> str | None:
    """Whether open_clip is installed (the weights are only known when loaded: that may ask the network)."""
    import importlib.util

    return None if importlib.util.find_spec("open_clip") else CLIP_UNAVAILABLE + "open_clip is not installed"


CLIP_OPTIONS = (
    Option("--clip-model", "clip_model", "open_clip model name (default: the one the stored CLIP vectors were "
           "made with, else ViT-B-32; OpenAI or laion400m weights given as a file need the -quickgelu name, "
           "e.g. ViT-B-32-quickgelu)"),
    Option("--clip-pretrained", "clip_pretrained", "pretrained tag (default: the stored vectors' weights, else "
           "laion2b_s34b_b79k), a weights file, or local-dir:FOLDER"),
    Option("--device", "device", "torch device for CLIP (default: cuda if available, else cpu)"),
)


def _head(ctx: BuildContext) -> GenreModel:
    return ctx.classifier()


def builtin_registry() -> Registry:
    """The signals and embedders coverlens ships (a fresh registry, for tests to extend)."""
    return Registry(
        signals=[SignalSpec("head", "fastai head", _head, EvalRow("head", "fastai head",
                            missing="no trained model (run `coverlens train`)"),
                            check=_needs_model, stamp=model_stamp),
                 SignalSpec("text", "text model (words read on the cover)", text_signals.build_text, EvalRow(
                            "text", "text model (OCR words)", missing="no text model (run `coverlens train`)"),
                            check=text_signals.text_check, stamp=text_signals.text_stamp),
                 SignalSpec("fused", "head fused with the text model", text_signals.build_fused, EvalRow(
                            "fused", "fused: head + text model", missing="no text model (run `coverlens train`)"),
                            check=lambda ctx: text_signals.text_check(ctx) or _needs_model(ctx),
                            stamp=lambda ctx: (model_stamp(ctx), text_signals.text_stamp(ctx)))],
        embedders=[
            # not offered nor indexed: the notebook's baseline row of the evaluation only
            EmbedderSpec("imagenet", "ImageNet mobilenet_v2 body", _imagenet, offered=False, indexed=False,
                         evaluation=EvalRow("knn-imagenet", "KNN k=5, ImageNet features (baseline)", k=BASELINE_K,
                                            weighted=False, missing="no ImageNet embedder")),
            EmbedderSpec("finetuned", "fine-tuned backbone", _finetuned, check=_needs_model, stamp=model_stamp,
                         unavailable_prefix="fine-tuned embedder unavailable: ",
                         evaluation=EvalRow("knn-finetuned", "KNN vote, fine-tuned embeddings",
                                            missing="no fine-tuned embedder (run `coverlens train`)")),
            EmbedderSpec("clip", "OpenCLIP comparator", _clip, check=_clip_check, options=CLIP_OPTIONS,
                         unavailable_prefix=CLIP_UNAVAILABLE,
                         evaluation=EvalRow("knn-clip", "KNN vote, CLIP embeddings", missing="no CLIP embedder given",
                                            reason_prefix=CLIP_UNAVAILABLE)),
        ],
    )
