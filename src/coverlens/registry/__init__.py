"""The registry of signals: every embedder and every genre signal, declared once.

The CLI's choices and options, the app's radios, the indexer's `--embedder all`, the service's
`embedder(name)` and the evaluation's rows all read `REGISTRY`; nothing else names an embedder.

An **embedder** (`EmbedderSpec`) turns covers into vectors: its name (collection names, CLI
choices), a label, how it is built from a `BuildContext`, a cheap `check` that loads no model
(None, or why it cannot be had), a `stamp` (the kept instance is rebuilt when it changes: the
model file for the fine-tuned backbone), its evaluation row (a KNN vote over its vectors), whether
the CLI and app offer it, whether the indexer stores it, and its own CLI options. Its identity is
the built embedder's `identity` (stored with its Chroma collection, compared on reuse).

A **genre signal** (`SignalSpec`) gives genre probabilities for covers: anything with `classes`
and `predict_proba(images, tta=False)` (the fastai head is one). The KNN vote is the other kind of
genre signal: one per embedder, declared by the embedder's `evaluation` row.

Adding one is one module plus one registration, e.g. a text model and a signal fused from others:

    from coverlens.registry import REGISTRY, EvalRow, SignalSpec

    REGISTRY.register_signal(SignalSpec(
        name="text", label="text model on the words read",
        build=lambda ctx: load_text_model(ctx.workspace),         # classes + predict_proba
        check=lambda ctx: None if text_model_file(ctx.workspace).exists() else "run `coverlens text`",
        evaluation=EvalRow("text", "text model (OCR words)")))
    REGISTRY.register_signal(SignalSpec(
        name="fused", label="head + text",
        build=lambda ctx: Fused([ctx.signal("head"), ctx.signal("text")]),  # built (and kept) once
        evaluation=EvalRow("fused", "head fused with the text model")))

and an embedder:

    REGISTRY.register_embedder(EmbedderSpec(
        name="dino", label="DINOv2 features", build=lambda ctx: DinoEmbedder(),
        evaluation=EvalRow("knn-dino", "KNN vote, DINOv2 embeddings")))

Registration order is row order (CLI choices, radios, evaluation table): signals first, then the
embedders' KNN rows, then the chance row. The first offered embedder is the default.

Modules: `specs` (the spec types and `Registry`), `kept` (built once, rebuilt when a stamp changes),
`builtin` (what coverlens ships); import everything from `coverlens.registry`.
"""

from coverlens.registry.builtin import NO_MODEL, builtin_registry, has_model, model_stamp
from coverlens.registry.kept import Kept
from coverlens.registry.specs import (
    ALL,
    BuildContext,
    EmbedderSpec,
    EvalRow,
    GenreModel,
    Option,
    Registry,
    SignalSpec,
    Spec,
    Unavailable,
    replace,
)

REGISTRY = builtin_registry()

__all__ = ["ALL", "NO_MODEL", "REGISTRY", "BuildContext", "EmbedderSpec", "EvalRow", "GenreModel", "Kept", "Option",
           "Registry", "SignalSpec", "Spec", "Unavailable", "builtin_registry", "has_model", "model_stamp", "replace"]
