"""CNN-backbone embedders: the fine-tuned classifier's body, and the plain ImageNet body.

Both run one code path (`BackboneEmbedder`): squash to the model's size, normalise with the
model's own stats, run the convolutional body, pool with fastai's AdaptiveConcatPool2d (max and
average, as the classifier head does), L2-normalise. The fine-tuned embedder reuses the head's
own pooling layer; the ImageNet one (no fine-tuning: the KNN baseline) builds the same layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from coverlens.defaults import MODEL_BATCH_SIZE
from coverlens.embedders import l2_normalise, torch_threads
from coverlens.preprocess import batched, images_to_input

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    from coverlens.classifier.predict import Classifier

BATCH_SIZE = MODEL_BATCH_SIZE


class BackboneEmbedder:
    """A CNN body + pooling layer as an `Embedder` (float32, L2-normalised, batched)."""

    def __init__(self, name: str, body: torch.nn.Module, pool: torch.nn.Module, image_size: int,
                 mean: torch.Tensor, std: torch.Tensor, identity: dict[str, Any],
                 device: torch.device | str | None = None) -> None:
        import torch

        torch.set_num_threads(torch_threads())
        self.name = name
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net = torch.nn.Sequential(body, pool, torch.nn.Flatten()).to(self.device).eval()
        self.image_size = image_size
        self.mean, self.std = mean.flatten().float(), std.flatten().float()
        with torch.inference_mode():  # the width of the pooled output, from a tiny dummy pass
            probe = torch.zeros(1, 3, 64, 64, device=self.device)
            self.dimension = int(self.net(probe).shape[1])
        self._identity = {**identity, "embedder": name, "image_size": image_size,
                          "pool": "concat(max,avg)", "dimension": self.dimension}

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        import numpy as np
        import torch

        out = []
        with torch.inference_mode():
            for chunk in batched(images, BATCH_SIZE):
                batch = images_to_input(chunk, self.image_size, self.mean, self.std, self.device)
                out.append(self.net(batch).float().cpu().numpy())
        vectors = np.concatenate(out) if out else np.zeros((0, self.dimension), np.float32)
        return l2_normalise(vectors)


class FinetunedBackboneEmbedder(BackboneEmbedder):
    """The fine-tuned classifier's body and its head's pooling; identity names the model file."""

    def __init__(self, classifier: Classifier, device: torch.device | str | None = None) -> None:
        body, head = classifier.model[0], classifier.model[1]
        super().__init__(
            "finetuned", body, head[0], classifier.image_size, classifier.mean, classifier.std,
            {"model_sha256": classifier.identity["sha256"], "arch": classifier.identity["arch"]},
            device or classifier.device,
        )


class ImagenetBackboneEmbedder(BackboneEmbedder):
    """The arch's ImageNet body, not fine-tuned (name "imagenet"). `pretrained=False` gives a
    random-init body, for tests that must not need weights."""

    def __init__(self, arch: str = "mobilenet_v2", image_size: int = 224, pretrained: bool = True,
                 device: torch.device | str | None = None) -> None:
        import torch

        from coverlens.classifier.arch import arch_stats, backbone, import_fastai, resolve_arch

        import_fastai()
        from fastai.layers import AdaptiveConcatPool2d

        with torch.random.fork_rng():  # a reproducible random body, without touching the global RNG
            torch.manual_seed(0)
            body = backbone(arch, pretrained)
        mean, std = arch_stats(resolve_arch(arch))
        super().__init__(
            "imagenet", body, AdaptiveConcatPool2d(), image_size,
            torch.tensor(mean), torch.tensor(std),
            {"arch": arch, "weights": "imagenet" if pretrained else "random-init(seed 0)"}, device,
        )
