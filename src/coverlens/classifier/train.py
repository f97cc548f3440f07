"""Fine-tune the genre classifier on the catalog's train split and export it.

The held-out test split is never touched here: early stopping watches a seeded, stratified slice
of the TRAIN split. Flow: catalog rows -> pixel cache -> in-memory loaders -> fastai fine-tuning
(frozen head epochs, then all layers with discriminative learning rates, keeping the best
validation epoch) -> export to temp + atomic replace -> sidecar.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from coverlens.classifier.config import DEFAULT_LR, TrainConfig, TrainResult, frozen_blocks_of
from coverlens.errors import CoverlensError, WorkspaceError
from coverlens.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from fastai.learner import Learner


def check_config(config: TrainConfig) -> None:
    problems = []
    if config.image_size < 32:
        problems.append(f"image_size {config.image_size} < 32")
    if config.epochs < 1 or config.frozen_epochs < 0:
        problems.append("epochs must be >= 1 and frozen_epochs >= 0")
    if config.batch_size < 2:
        problems.append("batch_size must be >= 2")
    if not 0 < config.valid_fraction <= 0.5:
        problems.append(f"valid_fraction {config.valid_fraction} not in (0, 0.5]")
    if not 0 <= config.label_smoothing < 1:
        problems.append(f"label_smoothing {config.label_smoothing} not in [0, 1)")
    if config.frozen_blocks is not None and config.frozen_blocks < 0:
        problems.append(f"frozen_blocks {config.frozen_blocks} must be >= 0")
    if config.lr is not None and config.lr <= 0:
        problems.append(f"lr {config.lr} must be positive")
    if problems:
        raise CoverlensError("bad training settings: " + "; ".join(problems))


def training_covers(workspace: Workspace) -> pd.DataFrame:
    """The distinct readable covers of the catalog's train split (never the test split)."""
    from coverlens.catalog import distinct_covers, load_catalog

    covers = distinct_covers(load_catalog(workspace))
    train = covers[covers["split"] == "train"].reset_index(drop=True)
    if train["genre"].nunique() < 2:
        raise WorkspaceError(f"the catalog in {workspace.root} has {len(train)} train covers in "
                             f"{train['genre'].nunique()} genre(s); training needs at least two genres")
    return train


def valid_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded, stratified validation slice: `fraction` of each genre (one at least, when it has 2+)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        take = min(len(members) - 1, max(1, round(len(members) * fraction)))
        mask[rng.choice(members, size=take, replace=False)] = True
    return mask


def build_learner(dls: Any, config: TrainConfig) -> Learner:
    import torch
    from fastai.vision.all import (
        CrossEntropyLossFlat,
        LabelSmoothingCrossEntropyFlat,
        Normalize,
        accuracy,
        vision_learner,
    )

    from coverlens.classifier.arch import arch_stats, resolve_arch

    arch = resolve_arch(config.arch)
    loss = (LabelSmoothingCrossEntropyFlat(eps=config.label_smoothing) if config.label_smoothing
            else CrossEntropyLossFlat())
    try:
        learn = vision_learner(dls, arch, pretrained=config.pretrained, n_out=dls.c, loss_func=loss,
                               metrics=accuracy)
    except OSError as exc:  # timm or torchvision trying to download weights offline
        from coverlens.errors import WeightsError

        raise WeightsError(f"pretrained weights for {config.arch} are not available ({exc}); "
                           "use mobilenet_v2 or --no-pretrained") from exc
    if not any(isinstance(t, Normalize) for t in dls.after_batch.fs):
        # fastai only normalises for pretrained models; do it always, so inference is uniform
        dls.add_tfms([Normalize.from_stats(*arch_stats(arch))], "after_batch")
    if torch.cuda.is_available():
        learn.to_fp16()
    return learn


def choose_lr(learn: Learner, config: TrainConfig) -> float:
    if config.lr is not None:
        return config.lr
    if config.find_lr:
        return float(learn.lr_find(show_plot=False).valley)
    return DEFAULT_LR


def fit(learn: Learner, config: TrainConfig, lr: float) -> dict[str, Any]:
    """fastai's fine_tune recipe (frozen head first, then all layers with discriminative rates),
    with early stopping on validation loss (smoother than accuracy on a few hundred covers) and
    the best epoch's weights kept."""
    from fastai.callback.tracker import EarlyStoppingCallback

    from coverlens.classifier.callbacks import BestWeights, FreezeLeadingBlocks

    best = BestWeights(monitor="valid_loss")
    stop = EarlyStoppingCallback(monitor="valid_loss", patience=config.patience)
    frozen = frozen_blocks_of(config)
    keep_frozen = [FreezeLeadingBlocks(frozen)] if frozen else []
    history: list[dict[str, Any]] = []

    def record(stage: str) -> None:
        names = list(learn.recorder.metric_names[1:-1])  # without "epoch" and "time"
        history.extend({"stage": stage, **dict(zip(names, map(float, v), strict=False))}
                       for v in learn.recorder.values)

    if config.pretrained and config.frozen_epochs:
        learn.freeze()
        learn.fit_one_cycle(config.frozen_epochs, slice(lr), pct_start=0.99, cbs=keep_frozen)
        record("frozen")
        lr /= 2
        learn.unfreeze()
        learn.fit_one_cycle(config.epochs, slice(lr / 100, lr), pct_start=0.3, div=5.0,
                            cbs=[best, stop, *keep_frozen])
    else:
        learn.unfreeze()
        learn.fit_one_cycle(config.epochs, lr, cbs=[best, stop, *keep_frozen])
    record("unfrozen")
    valid_loss, valid_accuracy = learn.validate()
    return {"valid_accuracy": float(valid_accuracy), "valid_loss": float(valid_loss),
            "best_epoch": best.best_epoch, "lr": lr, "history": history}


def train_classifier(workspace: Workspace, config: TrainConfig | None = None,
                     progress: bool = True) -> TrainResult:
    """Train on the catalog's train split, export `model.pkl` + `model.json`; see module docs.

    Holds the workspace's writer lock throughout: a second `train` (or any other writer) is refused
    with "busy: train, pid N, since T" instead of both running and the last one winning.
    """
    from coverlens.locks import workspace_writer

    config = config or TrainConfig()
    check_config(config)
    with workspace_writer(workspace, "train"):
        return _train_classifier(workspace, config, progress)


def _train_classifier(workspace: Workspace, config: TrainConfig, progress: bool) -> TrainResult:
    import torch
    from fastai.torch_core import set_seed

    from coverlens.catalog import library_root
    from coverlens.classifier.data import load_pixels
    from coverlens.classifier.loader import build_dataloaders  # imports fastai (quietly) first
    from coverlens.classifier.model_file import export_model, ids_digest
    from coverlens.preprocess import torch_threads

    started = time.perf_counter()
    covers = training_covers(workspace)
    pixels, kept, skipped = load_pixels(
        workspace, library_root(workspace), list(zip(covers["id"], covers["path"], strict=True)),
        config.image_size, workers=config.workers, progress=_cache_bar() if progress else None)
    covers = covers.iloc[kept].reset_index(drop=True)
    classes = sorted(covers["genre"].unique())
    if len(classes) < 2:
        raise WorkspaceError(f"only {len(covers)} readable train covers in {len(classes)} genre(s)")
    labels = covers["genre"].map({g: i for i, g in enumerate(classes)}).to_numpy()
    valid = valid_mask(labels, config.valid_fraction, config.seed)

    torch.set_num_threads(torch_threads())
    set_seed(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dls = build_dataloaders(pixels, labels, valid, classes, config, device)
    learn = build_learner(dls, config)
    # bars only on a terminal (in a log file they are carriage-return noise): there, one line per epoch
    bars = progress and sys.stderr.isatty()
    with (contextlib.nullcontext() if bars else learn.no_bar()), \
            (contextlib.nullcontext() if progress else learn.no_logging()), \
            (contextlib.nullcontext() if bars or not progress else epoch_lines(learn)):
        lr = choose_lr(learn, config)
        metrics = fit(learn, config, lr)
    seconds = time.perf_counter() - started
    metrics["train_seconds"] = round(seconds, 1)
    learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "MixedPrecision"])
    facts = {
        "classes": classes, "arch": config.arch, "image_size": config.image_size,
        "preprocessing": {"resize": "squash", "resample": "bicubic", "normalize": "model's Normalize"},
        "trained_on": {"split": "train", "covers": len(covers), "valid_covers": int(valid.sum()),
                       "ids_sha256": ids_digest(covers["id"]), "skipped": len(skipped)},
        "metrics": metrics, "train_seconds": round(seconds, 1), "config": config.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": _versions(),
    }
    model_path, sidecar_path, _ = export_model(learn, workspace, facts)
    return TrainResult(model_path, sidecar_path, classes, metrics, seconds, int((~valid).sum()),
                       int(valid.sum()), skipped)


@contextlib.contextmanager
def epoch_lines(learn: Learner) -> Iterator[None]:
    """Log each epoch as one named line ("epoch 0: train_loss 1.8000, ..."), then restore the logger
    (the exported learner keeps fastai's own)."""
    def line(values: list[Any]) -> None:
        names = learn.recorder.metric_names
        print(", ".join(f"{n} {v:.4f}" if isinstance(v, float) else f"{n} {v}" for n, v in zip(names, values,
                                                                                              strict=False)),
              flush=True)

    original = learn.logger
    learn.logger = line
    try:
        yield
    finally:
        learn.logger = original


def _cache_bar() -> Any:
    def wrap(iterable: Any, total: int) -> Any:
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc="decode covers", unit="cover", file=sys.stderr,
                    disable=None, dynamic_ncols=True)

    return wrap


def _versions() -> dict[str, str]:
    import fastai
    import torch

    from coverlens import __version__

    return {"coverlens": __version__, "fastai": fastai.__version__, "torch": torch.__version__}
