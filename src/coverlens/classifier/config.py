"""Training settings and results: plain dataclasses, importable without torch (the CLI reads them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ARCH = "mobilenet_v2"


@dataclass
class TrainConfig:
    """How to fine-tune the genre classifier.

    Defaults measured on the album set (5 genres, ~3.6k train covers, 2 CPU cores; README
    "Results"): resolution is the lever (224 px scored 0.401 test top-1 against 0.383 at 128 px),
    and keeping mobilenet_v2's first 14 blocks frozen makes a 192-224 px step cost what a fully
    trained 128 px step does. 192 px with 1 + 5 epochs fits the 15-minute budget.
    """

    arch: str = DEFAULT_ARCH
    image_size: int = 192
    epochs: int = 5  # unfrozen epochs (early stopping on validation loss may end them sooner)
    frozen_epochs: int = 1  # head-only epochs first (only when pretrained)
    batch_size: int = 64
    # leading body blocks never trained (cheaper steps; see FreezeLeadingBlocks); None: the arch's
    # default (DEFAULT_FROZEN_BLOCKS) with pretrained weights, 0 without
    frozen_blocks: int | None = None
    lr: float | None = None  # None: DEFAULT_LR, or lr_find's suggestion when find_lr is set
    find_lr: bool = False
    seed: int = 0
    label_smoothing: float = 0.1
    pretrained: bool = True
    valid_fraction: float = 0.1  # carved from the TRAIN split (seeded) for early stopping
    patience: int = 2  # unfrozen epochs without a lower validation loss before stopping
    workers: int | None = None  # decoding threads for the pixel cache (None: cores + 1)
    augment: bool = True
    max_rotate: float = 5.0
    max_zoom: float = 1.15
    max_lighting: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_LR = 3e-3
DEFAULT_FROZEN_BLOCKS = {"mobilenet_v2": 14}  # of its 19 feature blocks; other archs train whole


def frozen_blocks_of(config: TrainConfig) -> int:
    """How many leading body blocks stay frozen: as set, else the arch's default when pretrained
    (random-init blocks must learn)."""
    if config.frozen_blocks is not None:
        return config.frozen_blocks
    return DEFAULT_FROZEN_BLOCKS.get(config.arch, 0) if config.pretrained else 0


@dataclass
class TrainResult:
    """What a training run produced: the exported model, its sidecar facts and how long it took."""

    model_path: Path
    sidecar_path: Path
    classes: list[str]
    metrics: dict[str, Any]
    seconds: float
    train_covers: int
    valid_covers: int
    skipped: list[str] = field(default_factory=list)  # "path: reason" of covers that could not be read
