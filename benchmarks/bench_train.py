"""Training-loop efficiency: the real fastai fit against the bare optimizer step, in one run.

Both train the same model (mobilenet_v2 by default, all layers) at the same batch size for the same
number of batches. The real loop is what `coverlens train` runs: pixel cache -> in-memory loaders ->
batch augmentation -> fastai `fit` (callbacks, recorder, its optimizer). The bare loop is
forward + backward + optimizer step on one batch already in memory, normalised. The ratio says how
much of the model's speed the pipeline keeps. Target (issue: genre classifier): >= 0.6.

Library: a generated one by default (works anywhere), or `--library ../shared/datasets/album-covers-5`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line  # noqa: E402
from coverlens.catalog import library_root, run_catalog  # noqa: E402
from coverlens.classifier.config import TrainConfig, frozen_blocks_of  # noqa: E402
from coverlens.workspace import Workspace  # noqa: E402


def prepare(workspace: Workspace, args: argparse.Namespace) -> str:
    if args.library:
        run_catalog(workspace, Path(args.library))
        return str(args.library)
    from coverlens.sample_library import make_sample_library

    library = workspace.root / "library"
    needed = (args.warmup + args.batches + 1) * args.batch_size  # training covers, after test and valid splits
    make_sample_library(library, genres=5, per_genre=int(needed / (0.8 * 0.9 * 5)) + 8, size=192)
    run_catalog(workspace, library)
    return f"generated sample library ({library})"


def build(workspace: Workspace, config: TrainConfig, batches_needed: int):
    """The learner `coverlens train` would build (same cache, loaders, augmentation, model)."""


    from coverlens.classifier.data import load_pixels
    from coverlens.classifier.loader import build_dataloaders  # imports fastai quietly
    from coverlens.classifier.train import build_learner, training_covers, valid_mask

    covers = training_covers(workspace)
    pixels, kept, _ = load_pixels(workspace, library_root(workspace),
                                  list(zip(covers["id"], covers["path"], strict=True)), config.image_size)
    classes = sorted(covers["genre"].iloc[kept].unique())
    labels = covers["genre"].iloc[kept].map({g: i for i, g in enumerate(classes)}).to_numpy()
    valid = valid_mask(labels, config.valid_fraction, config.seed)
    if (~valid).sum() < batches_needed * config.batch_size:
        raise SystemExit(f"need {batches_needed * config.batch_size} training covers, have {(~valid).sum()}")
    dls = build_dataloaders(pixels, labels, valid, classes, config, device=None)
    learn = build_learner(dls, config)
    learn.unfreeze()
    return learn


def real_loop(learn, warmup: int, batches: int) -> float:
    """images/s of fastai `fit` over `batches` training batches, after `warmup` batches."""
    from fastai.callback.core import Callback, CancelEpochException, CancelValidException

    class Timed(Callback):
        """Stops the epoch after n batches, skips validation, times from the end of the first batch."""

        def __init__(self, n: int) -> None:
            self.n, self.started = n, None

        def after_batch(self) -> None:
            if self.iter == 0:
                self.started = time.perf_counter()  # the first batch includes one-off setup
            if self.iter + 1 >= self.n:
                raise CancelEpochException

        def before_validate(self) -> None:
            raise CancelValidException

    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-4, cbs=Timed(warmup))
        timer = Timed(batches + 1)
        learn.fit(1, 1e-4, cbs=timer)
    return batches * learn.dls.train.bs / (time.perf_counter() - timer.started)


def bare_loop(learn, config: TrainConfig, warmup: int, batches: int) -> float:
    """images/s of forward + backward + Adam step on one in-memory batch, same model and batch size."""
    import torch

    model = learn.model.train()
    device = next(model.parameters()).device
    x = torch.randn(config.batch_size, 3, config.image_size, config.image_size, device=device)
    y = torch.randint(0, learn.dls.c, (config.batch_size,), device=device)
    loss_func = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = loss_func(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(batches):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batches * config.batch_size / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", help="a real library folder (default: a generated one)")
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=TrainConfig().image_size)
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--frozen-blocks", type=int, default=None,
                        help="leading blocks kept frozen in both loops (default: the training default for the arch)")
    parser.add_argument("--batches", type=int, default=8, help="timed batches per loop")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate the two loops this many times; the best of each counts "
                        "(a busy machine slows whichever runs while it is busy)")
    args = parser.parse_args()

    import torch

    from coverlens.classifier.callbacks import freeze_leading_blocks

    config = TrainConfig(arch=args.arch, image_size=args.size, batch_size=args.batch_size, pretrained=False)
    # random init (no weights needed), but the same blocks frozen as the pretrained default recipe
    frozen = frozen_blocks_of(TrainConfig(arch=args.arch)) if args.frozen_blocks is None else args.frozen_blocks
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="bench-train-")))
    try:
        source = prepare(workspace, args)
        learn = build(workspace, config, args.warmup + args.batches + 1)
        freeze_leading_blocks(learn.model[0], frozen)  # fit never unfreezes: both loops see it
        reals, bares = [], []
        for _ in range(args.rounds):
            reals.append(real_loop(learn, args.warmup, args.batches))
            bares.append(bare_loop(learn, config, args.warmup, args.batches))
        real, bare = max(reals), max(bares)
    finally:
        shutil.rmtree(workspace.root, ignore_errors=True)
    device = "cuda" if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} threads"
    print(f"== training-loop benchmark: {args.arch} {args.size}px, {frozen} leading blocks frozen, "
          f"batch {args.batch_size}, {args.batches} timed batches after {args.warmup} warm-up ({device})")
    line("library", source)
    line("real loop: fastai fit (cache, augment, fit)", f"{real:.1f} images/s  (rounds: "
         + ", ".join(f"{r:.1f}" for r in reals) + ")")
    line("bare loop: forward+backward+step in memory", f"{bare:.1f} images/s  (rounds: "
         + ", ".join(f"{b:.1f}" for b in bares) + ")")
    ratio = real / bare
    line("ratio real / bare (target >= 0.6)", f"{ratio:.2f} {'OK' if ratio >= 0.6 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
