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
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from coverlens.defaults import BASELINE_K
from coverlens.errors import CoverlensError, ModelError, WeightsError
from coverlens.text import signals as text_signals  # light: heavy imports wait for first use

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from coverlens.embedders import Embedder
    from coverlens.workspace import Workspace

ALL = "all"  # the indexer's choice of every indexed embedder that can be had
NO_MODEL = "no fine-tuned model; run `coverlens train`"


class Unavailable(ModelError):
    """A spec's cheap check says it cannot be had yet (the message names the missing step)."""


class GenreModel(Protocol):
    """What a genre signal builds: probabilities over its own `classes` (columns in that order)."""

    classes: Sequence[str]

    def predict_proba(self, images: Sequence[Image.Image], tta: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class Option:
    """A command-line option an embedder takes (`coverlens index` and `similar` offer it)."""

    flag: str  # "--clip-model"
    key: str  # its key in `BuildContext.options`
    help: str


@dataclass(frozen=True)
class EvalRow:
    """One row of the evaluation table."""

    slug: str  # file names and JSON keys
    name: str  # shown in the table
    k: int | None = None  # KNN rows: neighbours that vote (None: the run's --k)
    weighted: bool = True  # KNN rows: similarity-weighted vote, else plain majority
    missing: str = ""  # the skip reason when nothing was handed in
    reason_prefix: str = ""  # put before a skip reason that does not start with it


@dataclass
class BuildContext:
    """What a spec's `build`, `check` and `stamp` may use."""

    workspace: Workspace
    classifier: Callable[[], Any]  # the kept, verified fastai classifier (ModelError when none)
    options: Mapping[str, Any] = field(default_factory=dict)  # the embedders' options (see `Option`)
    stored_identity: Callable[[str], dict[str, Any] | None] = lambda name: None  # read without a model
    signal: Callable[[str], GenreModel] | None = None  # another signal, built once (for fused ones)

    def option(self, key: str) -> Any:
        return self.options.get(key)


def _always(ctx: BuildContext) -> str | None:
    return None


def _unchanging(ctx: BuildContext) -> Hashable:
    return None


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    label: str
    build: Callable[[BuildContext], Embedder]  # raises a CoverlensError when it cannot be had
    check: Callable[[BuildContext], str | None] = _always  # cheap, loads nothing: why it cannot be had
    stamp: Callable[[BuildContext], Hashable] = _unchanging  # a kept instance is rebuilt when this changes
    evaluation: EvalRow | None = None  # its KNN vote row
    offered: bool = True  # a choice in the CLI and the app
    indexed: bool = True  # stored by `coverlens index`
    unavailable_prefix: str = ""  # how the indexer introduces a failure to build it
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class SignalSpec:
    name: str
    label: str
    build: Callable[[BuildContext], GenreModel]
    evaluation: EvalRow
    check: Callable[[BuildContext], str | None] = _always
    stamp: Callable[[BuildContext], Hashable] = _unchanging


Spec = EmbedderSpec | SignalSpec


class Registry:
    def __init__(self, embedders: Sequence[EmbedderSpec] = (), signals: Sequence[SignalSpec] = ()) -> None:
        self._embedders: dict[str, EmbedderSpec] = {}
        self._signals: dict[str, SignalSpec] = {}
        for spec in embedders:
            self.register_embedder(spec)
        for signal in signals:
            self.register_signal(signal)

    def register_embedder(self, spec: EmbedderSpec) -> EmbedderSpec:
        if spec.name in self._embedders or spec.name in self._signals:
            raise ValueError(f"{spec.name!r} is registered already")
        self._embedders[spec.name] = spec
        return spec

    def register_signal(self, spec: SignalSpec) -> SignalSpec:
        if spec.name in self._signals or spec.name in self._embedders:
            raise ValueError(f"{spec.name!r} is registered already")
        self._signals[spec.name] = spec
        return spec

    def with_embedder(self, spec: EmbedderSpec) -> Registry:
        """A copy with `spec` added, or replacing the embedder of the same name (tests, variants)."""
        embedders = {**self._embedders, spec.name: spec}
        return Registry(list(embedders.values()), list(self._signals.values()))

    def with_signal(self, spec: SignalSpec) -> Registry:
        signals = {**self._signals, spec.name: spec}
        return Registry(list(self._embedders.values()), list(signals.values()))

    def embedders(self) -> list[EmbedderSpec]:
        return list(self._embedders.values())

    def signals(self) -> list[SignalSpec]:
        return list(self._signals.values())

    def embedder(self, name: str) -> EmbedderSpec:
        if name not in self._embedders:
            raise CoverlensError(f"unknown embedder {name!r}; choose one of {', '.join(self.offered())}")
        return self._embedders[name]

    def signal(self, name: str) -> SignalSpec:
        if name not in self._signals:
            raise CoverlensError(f"unknown genre signal {name!r}; known: {', '.join(self._signals)}")
        return self._signals[name]

    def offered(self) -> list[str]:
        """Embedder names the CLI and the app offer, the default first."""
        return [s.name for s in self._embedders.values() if s.offered]

    def indexed(self) -> list[str]:
        return [s.name for s in self._embedders.values() if s.indexed]

    def index_choices(self) -> list[str]:
        """What `coverlens index --embedder` takes: every indexed embedder, or all of them."""
        return [ALL, *self.indexed()]

    @property
    def default_embedder(self) -> str:
        return self.offered()[0]

    def options(self) -> list[Option]:
        """The options of the offered embedders, each once."""
        seen: dict[str, Option] = {}
        for spec in self._embedders.values():
            for option in spec.options if spec.offered else ():
                seen.setdefault(option.key, option)
        return list(seen.values())

    def evaluated(self) -> Iterator[tuple[Spec, EvalRow]]:
        """(spec, row) of every evaluated signal, then every embedder's KNN row, in table order."""
        for signal in self._signals.values():
            yield signal, signal.evaluation
        for spec in self._embedders.values():
            if spec.evaluation is not None:
                yield spec, spec.evaluation

    def evaluated_rows(self) -> Iterator[tuple[str, EvalRow]]:
        """(signal or embedder name, row), in table order."""
        for spec, row in self.evaluated():
            yield spec.name, row

    def spec(self, name: str) -> Spec:
        return self._signals.get(name) or self.embedder(name)


class Kept:
    """Builds registered embedders and signals on first use and keeps them until their stamp changes.

    A failure is kept too (with the stamp it had), so an unreachable weights host is asked once,
    not on every search; a model file that appears later changes the stamp and is picked up.
    `builds` counts constructions (what a warm service must not do again).
    """

    def __init__(self, registry: Registry, context: BuildContext) -> None:
        self.registry, self.context = registry, context
        self._kept: dict[str, tuple[Hashable, Any, CoverlensError | None]] = {}
        self.builds: dict[str, int] = {}
        # Searches run side by side: two first uses must not build one model twice. Only a build
        # (or rebuild) takes the lock; a kept instance is read without it. Re-entrant: building one
        # spec may build another (a fused signal asks for the head).
        self._building = threading.RLock()
        if context.signal is None:
            context.signal = self.signal

    def _get(self, spec: Spec) -> Any:
        stamp = spec.stamp(self.context)
        kept = self._kept.get(spec.name)
        if kept is None or kept[0] != stamp:
            with self._building:
                kept = self._build(spec, stamp)
        if kept[2] is not None:
            raise kept[2]
        return kept[1]

    def _build(self, spec: Spec, stamp: Hashable) -> tuple[Hashable, Any, CoverlensError | None]:
        """Build under the lock; the new instance replaces the old in one assignment."""
        kept = self._kept.get(spec.name)
        if kept is None or kept[0] != stamp:  # another thread may have built it meanwhile
            kept = (stamp, None, None)
            try:
                reason = spec.check(self.context)
                if reason:
                    raise Unavailable(reason)
                self.builds[spec.name] = self.builds.get(spec.name, 0) + 1
                kept = (stamp, spec.build(self.context), None)
            except CoverlensError as exc:
                kept = (stamp, None, exc)
            self._kept[spec.name] = kept
        return kept

    def embedder(self, name: str) -> Embedder:
        return self._get(self.registry.embedder(name))

    def signal(self, name: str) -> GenreModel:
        return self._get(self.registry.signal(name))

    def state(self, name: str) -> tuple[bool | None, str]:
        """(available?, note) without building anything: what the last build gave while its stamp
        holds, else the cheap check (None: not known until it is first used)."""
        spec = self.registry.spec(name)
        kept = self._kept.get(name)
        if kept is not None and kept[0] == spec.stamp(self.context):
            return (kept[2] is None, "" if kept[2] is None else str(kept[2]))
        reason = spec.check(self.context)
        return (False, reason) if reason else (None, "")

    def forget(self) -> None:
        self._kept.clear()


# -- the built-in signals and embedders ------------------------------------------------------------

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


REGISTRY = builtin_registry()


def replace(spec: Spec, **changes: Any) -> Spec:
    """A copy of a spec with some fields changed (e.g. a test's `build`)."""
    return dataclasses.replace(spec, **changes)
