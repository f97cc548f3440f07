"""What the registry holds: embedder and genre-signal specs, their evaluation rows and options, and
the `Registry` that keeps them in order (see `coverlens.registry` for the whole picture)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from coverlens.errors import CoverlensError, ModelError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from coverlens.embedders import Embedder
    from coverlens.workspace import Workspace

ALL = "all"  # the indexer's choice of every indexed embedder that can be had


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


def replace(spec: Spec, **changes: Any) -> Spec:
    """A copy of a spec with some fields changed (e.g. a test's `build`)."""
    return dataclasses.replace(spec, **changes)
