"""One pass through the fine-tuned body for a search: the head's genres and the query's embedding.

The fine-tuned embedder *is* the classifier's body followed by its head's first (pooling) layer,
with the same input size and normalisation (`FinetunedBackboneEmbedder`). A search that asks the
head and then embeds the query would run that body twice; profiled through the app it was most of
a search's time (two mobilenet_v2 passes). Here the body runs once and both answers are read off
its features; the vector is the one `embedder.embed` gives (same modules, same input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coverlens.embedders import l2_normalise

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


def shares_body(classifier: Any, embedder: Any) -> bool:
    """True when `embedder` is the fine-tuned body of this very classifier (same model file)."""
    identity = getattr(embedder, "identity", None) or {}
    return (classifier is not None and identity.get("model_sha256") == classifier.identity.get("sha256")
            and getattr(embedder, "image_size", None) == classifier.image_size)


def head_and_vector(classifier: Any, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities in `classifier.classes` order, L2-normalised embedding) of one cover."""
    import torch

    body, head = classifier.model[0], classifier.model[1]
    with torch.inference_mode():
        features = body(classifier.to_input([image]))
        probs = torch.softmax(head(features).float(), dim=1)[0].cpu().numpy()
        vector = torch.flatten(head[0](features), 1).float().cpu().numpy()
    return probs, l2_normalise(vector)[0]
