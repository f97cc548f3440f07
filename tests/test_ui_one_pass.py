"""The search's one body pass gives what the head and the embedder give apart."""

from __future__ import annotations

import numpy as np

from coverlens.workspace import Workspace


def test_one_pass_equals_head_and_embedder_apart(trained_workspace: Workspace) -> None:
    from coverlens.classifier import load_classifier
    from coverlens.embedders.backbone import FinetunedBackboneEmbedder, ImagenetBackboneEmbedder
    from coverlens.images import open_image
    from coverlens.search.one_pass import head_and_vector, shares_body
    from coverlens.search.similar import embed_one

    classifier = load_classifier(trained_workspace)
    embedder = FinetunedBackboneEmbedder(classifier)
    assert shares_body(classifier, embedder)
    assert not shares_body(classifier, ImagenetBackboneEmbedder(image_size=32, pretrained=False))
    for cover in sorted(trained_workspace.root.parent.glob("library/*/*.jpg"))[:3]:
        image = open_image(cover)
        probs, vector = head_and_vector(classifier, image)
        np.testing.assert_allclose(probs, classifier.predict_proba([image])[0], atol=1e-5)
        np.testing.assert_allclose(vector, embed_one(image, embedder), atol=1e-5)
