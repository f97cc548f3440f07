"""The fastai genre classifier end to end on tiny generated libraries (random-init, no weights).

Two trained models are shared by the tests: a resnet18 that learns the generated genres (random-init
mobilenet_v2 needs far more steps than a test can afford), and a one-epoch mobilenet_v2, the default
arch, whose export must survive a fresh process (fastai pickles the arch function).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coverlens.catalog import distinct_covers, load_catalog
from coverlens.classifier import Classifier, TrainConfig, load_classifier, train_classifier
from coverlens.classifier.model_file import ids_digest, model_paths
from coverlens.embedders import Embedder
from coverlens.images import open_image
from coverlens.sample_library import make_sample_library
from coverlens.weights import sha256_of
from coverlens.workspace import Workspace
from libraries import catalogued_library

GENRES = 3
LEARNS = TrainConfig(arch="resnet18", image_size=32, epochs=8, frozen_epochs=0, batch_size=8,
                     pretrained=False, lr=1e-2, label_smoothing=0.0, patience=8)
DEFAULT_ARCH = TrainConfig(image_size=32, epochs=1, frozen_epochs=0, batch_size=8, pretrained=False)


def _workspace(root: Path, seed: int = 0) -> Workspace:
    return catalogued_library(root, genres=GENRES, per_genre=16, seed=seed)


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory):
    workspace = _workspace(tmp_path_factory.mktemp("learned"))
    return workspace, train_classifier(workspace, LEARNS, progress=False)


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory: pytest.TempPathFactory):
    workspace = _workspace(tmp_path_factory.mktemp("mobilenet"))
    return workspace, train_classifier(workspace, DEFAULT_ARCH, progress=False)


@pytest.fixture(scope="module")
def unseen(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Covers drawn with another seed: a steadier accuracy estimate than the tiny test split."""
    root = tmp_path_factory.mktemp("unseen")
    make_sample_library(root, genres=GENRES, per_genre=12, size=48, seed=7)
    return sorted(root.glob("*/*.*"))


def test_accuracy_well_above_chance(learned, unseen) -> None:
    workspace, _ = learned
    classifier = load_classifier(workspace)
    probs = classifier.predict_proba([open_image(p) for p in unseen])
    assert probs.shape == (len(unseen), GENRES) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    truth = np.array([classifier.classes.index(p.parent.name) for p in unseen])
    accuracy = float((probs.argmax(1) == truth).mean())
    assert accuracy >= 0.7, f"accuracy {accuracy:.2f} on {len(unseen)} unseen covers (chance 0.33)"


def test_fresh_process_loads_the_same_model(mobilenet, unseen) -> None:
    workspace, _ = mobilenet
    images = unseen[:5]
    here = load_classifier(workspace).predict_proba([open_image(p) for p in images])
    script = (
        "import json, sys\n"
        "from coverlens.classifier import load_classifier\n"
        "from coverlens.images import open_image\n"
        "from coverlens.workspace import Workspace\n"
        "c = load_classifier(Workspace.resolve(sys.argv[1]))\n"
        "print(json.dumps(c.predict_proba([open_image(p) for p in sys.argv[2:]]).tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(workspace.root), *map(str, images)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    there = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    assert np.allclose(here, there, atol=1e-5)


def test_sidecar_records_model_data_and_identity(mobilenet) -> None:
    workspace, result = mobilenet
    model_path, sidecar_path = model_paths(workspace)
    assert result.model_path == model_path and result.sidecar_path == sidecar_path
    sidecar = json.loads(sidecar_path.read_text())
    covers = distinct_covers(load_catalog(workspace))
    train = covers[covers["split"] == "train"]
    assert sidecar["classes"] == sorted(train["genre"].unique()) == result.classes
    assert sidecar["arch"] == "mobilenet_v2" and sidecar["image_size"] == 32
    assert sidecar["model_sha256"] == sha256_of(model_path)
    assert sidecar["trained_on"]["covers"] == len(train)  # validation is carved from train...
    assert sidecar["trained_on"]["ids_sha256"] == ids_digest(train["id"])  # ...and test never used
    assert sidecar["trained_on"]["valid_covers"] == result.valid_covers > 0
    assert result.train_covers + result.valid_covers == len(train)
    assert 0.0 <= sidecar["metrics"]["valid_accuracy"] <= 1.0
    assert sidecar["config"]["epochs"] == 1 and sidecar["train_seconds"] > 0
    classifier = load_classifier(workspace)
    assert isinstance(classifier, Classifier)
    assert classifier.identity == {"sha256": sidecar["model_sha256"], "arch": "mobilenet_v2", "image_size": 32}
    assert classifier.image_size == 32 and classifier.classes == sidecar["classes"]


def test_exported_model_holds_no_cover_pixels(mobilenet) -> None:
    from coverlens.classifier.model_file import load_verified

    workspace, _ = mobilenet
    learn, _ = load_verified(workspace)
    for loader in learn.dls.loaders:
        assert loader.dataset.images.untyped_storage().nbytes() == 0


def test_finetuned_embedder(learned, unseen) -> None:
    workspace, _ = learned
    from coverlens.registry import REGISTRY, BuildContext

    classifier = load_classifier(workspace)
    embedder = REGISTRY.embedder("finetuned").build(BuildContext(workspace, lambda: classifier))  # as registered
    assert isinstance(embedder, Embedder) and embedder.name == "finetuned"
    vectors = embedder.embed([open_image(p) for p in unseen[:6]])
    assert vectors.shape == (6, embedder.dimension) and vectors.dtype == np.float32
    assert embedder.dimension == 2 * 512  # resnet18's 512 channels, max- and average-pooled
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.identity["model_sha256"] == classifier.identity["sha256"]
    assert np.allclose(embedder.embed([open_image(unseen[0])]), vectors[:1], atol=1e-5)  # batch-independent
    assert embedder.embed([]).shape == (0, embedder.dimension)


def test_imagenet_embedder_without_weights(unseen) -> None:
    from coverlens.embedders.backbone import ImagenetBackboneEmbedder

    embedder = ImagenetBackboneEmbedder("mobilenet_v2", image_size=32, pretrained=False)
    assert isinstance(embedder, Embedder) and embedder.name == "imagenet"
    vectors = embedder.embed([open_image(p) for p in unseen[:3]])
    assert vectors.shape == (3, 2 * 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.identity["weights"] != "imagenet" and embedder.identity["arch"] == "mobilenet_v2"
    again = ImagenetBackboneEmbedder("mobilenet_v2", image_size=32, pretrained=False)
    assert np.allclose(again.embed([open_image(unseen[0])]), vectors[:1], atol=1e-5)


def test_tta_gives_probabilities(learned, unseen) -> None:
    classifier = load_classifier(learned[0])
    probs = classifier.predict_proba([open_image(p) for p in unseen[:4]], tta=True)
    assert probs.shape == (4, GENRES) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert classifier.predict_proba([]).shape == (0, GENRES)


def test_frozen_blocks_keep_their_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`frozen_blocks=4`: the first four body blocks end the fit exactly as they began; later ones learn."""
    from coverlens.classifier import train as train_module

    real_fit, weights = train_module.fit, {}

    def fit_and_watch(learn, config, lr):  # noqa: ANN001, ANN202 (the signature of train.fit)
        snapshot = lambda: {k: p.detach().clone() for k, p in learn.model[0].named_parameters()}  # noqa: E731
        weights["before"] = snapshot()
        metrics = real_fit(learn, config, lr)
        weights["after"] = snapshot()
        return metrics

    monkeypatch.setattr(train_module, "fit", fit_and_watch)
    config = TrainConfig(image_size=32, epochs=1, frozen_epochs=0, batch_size=8, pretrained=False, frozen_blocks=4)
    train_classifier(_workspace(tmp_path), config, progress=False)
    changed = {name: not bool((weights["before"][name] == weights["after"][name]).all()) for name in weights["before"]}
    block_of = {name: int(name.split(".")[1]) for name in changed}  # body.0 is mobilenet's `features`
    assert not any(changed[n] for n in changed if block_of[n] < 4)
    assert all(changed[n] for n in changed if block_of[n] >= 4 and n.endswith("weight"))
