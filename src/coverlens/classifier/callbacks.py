"""fastai callbacks used in training."""

from __future__ import annotations

from typing import Any

from fastai.callback.tracker import TrackerCallback


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
