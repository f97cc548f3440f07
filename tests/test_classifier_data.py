"""Training data: the pixel cache, the validation slice, and train/predict preprocessing parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from coverlens.sample_library import make_sample_library
from coverlens.workspace import Workspace


def test_pixel_cache_is_reused_and_unreadable_covers_skipped(tmp_path: Path, monkeypatch) -> None:
    import coverlens.classifier.data as data

    make_sample_library(tmp_path / "lib", genres=2, per_genre=3, size=40, seed=0)
    paths = sorted((tmp_path / "lib").glob("*/*.*"))
    (tmp_path / "lib" / "bad.png").write_bytes(b"garbage")
    covers = [(f"id{i}", str(p.relative_to(tmp_path / "lib"))) for i, p in enumerate(paths)]
    covers.append(("idbad", "bad.png"))
    workspace = Workspace(tmp_path / "ws")
    pixels, kept, skipped = data.load_pixels(workspace, tmp_path / "lib", covers, 24)
    assert pixels.shape == (len(paths), 24, 24, 3) and pixels.dtype == np.uint8
    assert kept == list(range(len(paths))) and len(skipped) == 1 and skipped[0].startswith("bad.png: ")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(data, "open_cover", no_decoding)  # the one cover reader
    again, _, _ = data.load_pixels(workspace, tmp_path / "lib", covers[:-1], 24)
    assert np.array_equal(again, pixels)


def test_validation_slice_is_stratified_and_seeded() -> None:
    from coverlens.classifier.train import valid_mask

    labels = np.repeat([0, 1, 2], [50, 30, 1])
    mask = valid_mask(labels, 0.1, seed=3)
    assert mask[labels == 0].sum() == 5 and mask[labels == 1].sum() == 3 and mask[labels == 2].sum() == 0
    assert np.array_equal(mask, valid_mask(labels, 0.1, seed=3))
    assert not np.array_equal(mask, valid_mask(labels, 0.1, seed=4))


def test_training_batches_match_prediction_preprocessing() -> None:
    """A validation batch (no augmentation) equals what `Classifier` feeds the model for the same pixels."""
    import torch

    from coverlens.classifier import TrainConfig
    from coverlens.classifier.loader import build_dataloaders
    from coverlens.classifier.train import build_learner
    from coverlens.preprocess import to_input

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat([0, 1], 6)
    valid = np.zeros(12, dtype=bool)
    valid[[0, 7]] = True
    config = TrainConfig(image_size=32, batch_size=4, pretrained=False)
    dls = build_dataloaders(pixels, labels, valid, ["a", "b"], config, torch.device("cpu"))
    build_learner(dls, config)  # adds the Normalize the exported model carries
    x, y = dls.valid.one_batch()
    normalize = next(t for t in dls.after_batch.fs if type(t).__name__ == "Normalize")
    expected = to_input(pixels[valid], normalize.mean, normalize.std)
    assert torch.allclose(torch.as_tensor(x), expected, atol=1e-5)
    assert y.tolist() == [0, 1]
    train_x, _ = dls.train.one_batch()
    assert train_x.shape == (4, 3, 32, 32) and train_x.dtype == torch.float32
