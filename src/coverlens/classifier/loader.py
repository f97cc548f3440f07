"""fastai DataLoaders over in-memory pixels: a batch is one tensor gather, not n item pipelines.

This module imports fastai at the top: only training and model loading import it (`load_learner`
unpickles `CoverBatchDL` and `CoverPixels` from here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from coverlens.classifier.arch import import_fastai

import_fastai()  # before the fastai imports below: hides a torch deprecation warning

from fastai.data.core import DataLoaders, TfmdDL  # noqa: E402
from fastai.torch_core import TensorCategory, TensorImage  # noqa: E402
from fastai.vision.all import IntToFloatTensor, aug_transforms  # noqa: E402


class CoverPixels:
    """The dataset behind one loader: uint8 NCHW images and int64 labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, vocab: list[str], split_idx: int):
        self.images, self.labels, self.vocab, self.split_idx = images, labels, vocab, split_idx

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> int:
        return index  # CoverBatchDL gathers whole batches itself

    def new_empty(self) -> CoverPixels:
        """What `learn.export` keeps: no pixels; the vocab and the split.

        The slices are cloned: a `[:0]` view still pickles the whole storage it views (every cached
        cover would land in the model file)."""
        return CoverPixels(self.images[:0].clone(), self.labels[:0].clone(), self.vocab, self.split_idx)


class CoverBatchDL(TfmdDL):
    """A fastai loader over `CoverPixels`; after_batch turns uint8 into augmented float batches."""

    def do_batch(self, b: list[int]) -> tuple[TensorImage, TensorCategory]:
        index = torch.as_tensor(b, dtype=torch.long)
        return TensorImage(self.dataset.images[index]), TensorCategory(self.dataset.labels[index])


def batch_transforms(config: Any) -> list[Any]:
    """uint8 -> float, then mild augmentation of whole training batches: no flips (covers carry
    text), a small rotation, a mild zoom, lighting. fastai's Normalize is added by vision_learner."""
    tfms: list[Any] = [IntToFloatTensor()]
    if config.augment:
        tfms += aug_transforms(do_flip=False, max_rotate=config.max_rotate, max_zoom=config.max_zoom,
                               max_lighting=config.max_lighting, max_warp=0.0)
    return tfms


def build_dataloaders(
    pixels: np.ndarray, labels: np.ndarray, valid: np.ndarray, vocab: list[str], config: Any,
    device: torch.device | None = None,
) -> DataLoaders:
    """Train/valid loaders over (n, s, s, 3) uint8 `pixels`; `valid` is a boolean mask."""
    images = torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)))
    targets = torch.from_numpy(labels.astype(np.int64))
    loaders = []
    for split_idx, mask, shuffle in ((0, ~valid, True), (1, valid, False)):
        idx = torch.from_numpy(np.flatnonzero(mask))
        dataset = CoverPixels(images[idx], targets[idx], vocab, split_idx)
        loaders.append(CoverBatchDL(
            dataset, bs=config.batch_size * (1 if shuffle else 2), shuffle=shuffle,
            drop_last=shuffle and len(idx) > config.batch_size, num_workers=0,
            after_batch=batch_transforms(config), device=device))
    dls = DataLoaders(*loaders, device=device)
    dls.c, dls.vocab = len(vocab), vocab
    return dls
