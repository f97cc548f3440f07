"""The classifier answers a repeated batch from memory: a fused signal asks for the head's
probabilities of the images the head was just given, and must not run the network twice."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from coverlens.classifier import Classifier


class CountingNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x.mean(dim=(2, 3)))


def _classifier() -> tuple[Classifier, CountingNet]:
    net = CountingNet()
    zeros, ones = torch.zeros(3), torch.ones(3)
    return Classifier(net, ["a", "b"], {"image_size": 8}, zeros, ones, device="cpu"), net


def _images(n: int, shade: int = 0) -> list[Image.Image]:
    return [Image.new("RGB", (12, 12), (shade + 40 * i, 10, 200)) for i in range(n)]


def test_the_same_batch_runs_the_network_once() -> None:
    classifier, net = _classifier()
    images = _images(3)
    first = classifier.predict_proba(images)
    again = classifier.predict_proba(list(images))  # a new list of the same images, as a second feed gets
    assert net.calls == 1
    np.testing.assert_array_equal(first, again)
    first[:] = 0  # a caller writing into its answer does not change what is remembered
    np.testing.assert_array_equal(classifier.predict_proba(images), again)


def test_other_images_or_tta_are_computed() -> None:
    classifier, net = _classifier()
    images = _images(2)
    plain = classifier.predict_proba(images)
    classifier.predict_proba(images, tta=True)
    other = classifier.predict_proba(_images(2, shade=100))
    assert net.calls == 1 + 4 + 1  # TTA runs four views
    assert not np.allclose(plain, other)
