"""The one preprocessing path: how a cover becomes model input (shared by `classifier` and
`embedders`, so it sits below both and imports neither).

Training caches covers through `resize_cover`; prediction and both backbone embedders go through
`resize_cover` + `to_input`, so a cover is squashed, resampled and normalised the same way
everywhere. The mean/std come from the model (the exported fastai `Normalize`, or the arch's
pretraining stats), never from a hand-copied constant.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

T = TypeVar("T")


def resize_cover(image: Image.Image, size: int) -> np.ndarray:
    """An RGB cover squashed to size x size (covers are square or nearly: no crop loses a title)."""
    import numpy as np
    from PIL import Image

    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)


def to_input(pixels: np.ndarray | torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """NHWC uint8 pixels -> normalised float NCHW on `device` (what fastai's batch transforms give)."""
    import torch

    batch = torch.as_tensor(pixels).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    return (batch - mean.to(device).view(1, -1, 1, 1)) / std.to(device).view(1, -1, 1, 1)


def images_to_input(images: Sequence[Image.Image], size: int, mean: torch.Tensor, std: torch.Tensor,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    import numpy as np

    return to_input(np.stack([resize_cover(image, size) for image in images]), mean, std, device)


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def tta_views(batch: torch.Tensor, scale: float = 0.9) -> list[torch.Tensor]:
    """The batch plus a centre zoom and two corner crops (no flips: covers carry text)."""
    import torch.nn.functional as F

    size = batch.shape[-1]
    crop = max(1, round(size * scale))
    off = size - crop
    mid = off // 2
    views = [batch]
    for top, left in ((mid, mid), (0, 0), (off, off)):
        part = batch[..., top:top + crop, left:left + crop]
        views.append(F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False))
    return views


def torch_threads() -> int:
    """Threads for CPU inference: all cores, but leave one to the image decoding when there are many."""
    import os

    cores = os.cpu_count() or 1
    return cores if cores <= 4 else cores - 1
