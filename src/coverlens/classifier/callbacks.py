"""fastai callbacks used in training."""

from __future__ import annotations

from typing import Any

from fastai.callback.core import Callback
from fastai.callback.tracker import TrackerCallback
from torch import nn


class BestWeights(TrackerCallback):
    """Keep the best epoch's weights in memory and put them back when fitting ends (even when
    early stopping cancels the fit), so the exported model is the best validated one."""

    order = TrackerCallback.order + 1

    def before_fit(self) -> None:
        super().before_fit()
        self.state: dict[str, Any] | None = None
        self.best_epoch: int | None = None

    def after_epoch(self) -> None:
        super().after_epoch()
        if self.new_best:
            self.state = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}
            self.best_epoch = self.epoch

    def after_fit(self) -> None:
        if self.state is not None:
            self.learn.model.load_state_dict(self.state)


def leading_blocks(body: nn.Module) -> list[nn.Module]:
    """The body's blocks in input order: mobilenet's body wraps one `features` Sequential, a
    resnet's body lists its stem and stages directly."""
    children = list(body.children())
    if len(children) == 1 and isinstance(children[0], nn.Sequential):
        children = list(children[0].children())
    return children


class FreezeLeadingBlocks(Callback):
    """Keep the first `count` body blocks frozen in every stage, even after `unfreeze()`.

    Their generic low-level filters need no re-learning for covers, and no gradient then flows
    back through the high-resolution early layers: a step costs much less, which buys a larger
    image size in the same time. Their batch-norm statistics still follow the data.
    """

    order = 0

    def __init__(self, count: int) -> None:
        self.count = count

    def before_fit(self) -> None:
        freeze_leading_blocks(self.learn.model[0], self.count)


def freeze_leading_blocks(body: nn.Module, count: int) -> None:
    for block in leading_blocks(body)[:count]:
        for param in block.parameters():
            param.requires_grad_(False)
