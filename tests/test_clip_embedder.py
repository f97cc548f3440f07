"""Tests for coverlens.embedders.clip, with a tiny random-init open_clip model (no downloads)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverlens.embedders import Embedder
from coverlens.embedders import clip as clip_module
from coverlens.embedders.clip import (
    RANDOM_INIT,
    TINY_TEST_CONFIG,
    TINY_TEST_MODEL,
    ClipEmbedder,
    ClipUnavailable,
    load_clip_embedder,
    register_model_config,
)


@pytest.fixture(scope="module", autouse=True)
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    register_model_config(TINY_TEST_MODEL, TINY_TEST_CONFIG, tmp_path_factory.mktemp("open_clip_configs"))


def covers() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    sizes = [(40, 60), (64, 64), (20, 33), (100, 70), (32, 32)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def test_tiny_random_init_embeds_normalised_float32() -> None:
    embedder = ClipEmbedder(TINY_TEST_MODEL, None, random_init=True, seed=1, batch_size=2)
    assert isinstance(embedder, Embedder)
    assert embedder.name == "clip" and embedder.dimension == TINY_TEST_CONFIG["embed_dim"]
    vectors = embedder.embed(covers())
    assert vectors.shape == (5, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len({tuple(np.round(v, 4)) for v in vectors}) == 5  # different covers, different vectors
    assert embedder.embed([]).shape == (0, 16)
    identity = embedder.identity
    assert identity["pretrained"] == RANDOM_INIT and identity["seed"] == 1
    assert identity["model"] == TINY_TEST_MODEL and len(identity["config_sha256"]) == 64


def test_random_init_is_reproducible_and_seed_changes_identity() -> None:
    a = ClipEmbedder(TINY_TEST_MODEL, None, random_init=True, seed=0)
    b = ClipEmbedder(TINY_TEST_MODEL, None, random_init=True, seed=0)
    c = ClipEmbedder(TINY_TEST_MODEL, None, random_init=True, seed=5)
    images = covers()
    np.testing.assert_array_equal(a.embed(images), b.embed(images))
    assert a.identity == b.identity != c.identity
    assert not np.allclose(a.embed(images), c.embed(images))
    # the batch size does not change the result
    a.batch_size = 1
    np.testing.assert_allclose(a.embed(images), b.embed(images), atol=1e-5)


def test_random_weights_are_never_a_silent_fallback() -> None:
    loaded = load_clip_embedder(TINY_TEST_MODEL, None)
    assert loaded.embedder is None and "random_init=True" in loaded.reason
    with pytest.raises(ClipUnavailable):
        ClipEmbedder(TINY_TEST_MODEL, None)


def test_weights_from_a_local_file_are_identified_by_hash(tmp_path: Path) -> None:
    import torch

    source = ClipEmbedder(TINY_TEST_MODEL, None, random_init=True, seed=2)
    weights = tmp_path / "tiny.pt"
    torch.save(source.model.state_dict(), weights)
    loaded = ClipEmbedder(TINY_TEST_MODEL, str(weights))
    assert loaded.identity["pretrained"] == str(weights)
    assert len(loaded.identity["weights_sha256"]) == 64 and "seed" not in loaded.identity
    np.testing.assert_allclose(loaded.embed(covers()), source.embed(covers()), atol=1e-5)


def test_openai_weights_file_needs_the_quickgelu_name(tmp_path: Path) -> None:
    weights = tmp_path / "ViT-B-32-openai.pt"
    weights.write_bytes(b"never read")
    loaded = load_clip_embedder("ViT-B-32", str(weights))
    assert loaded.embedder is None and "use the model name ViT-B-32-quickgelu" in loaded.reason


def test_weights_from_a_local_dir(tmp_path: Path) -> None:
    import torch

    source = ClipEmbedder(TINY_TEST_MODEL, None, random_init=True, seed=4)
    folder = tmp_path / "tiny-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_TEST_CONFIG}))
    missing = load_clip_embedder(TINY_TEST_MODEL, f"local-dir:{folder}")
    assert missing.embedder is None and "no weights file" in missing.reason
    torch.save(source.model.state_dict(), folder / "open_clip_pytorch_model.bin")
    loaded = ClipEmbedder("any-name", f"local-dir:{folder}")
    assert set(loaded.identity["files_sha256"]) == {"open_clip_config.json", "open_clip_pytorch_model.bin"}
    np.testing.assert_allclose(loaded.embed(covers()), source.embed(covers()), atol=1e-5)


def test_unknown_model_tag_or_path_says_why() -> None:
    unknown_tag = load_clip_embedder("ViT-B-32", "no-such-tag")
    assert unknown_tag.embedder is None and "laion2b_s34b_b79k" in unknown_tag.reason
    assert "unknown open_clip model" in load_clip_embedder("no-such-model", "x").reason
    assert "no open_clip_config.json" in load_clip_embedder("ViT-B-32", "local-dir:/nonexistent").reason


def test_real_tag_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing cached and the hub unreachable (a closed local port): a reason in seconds, no hang."""
    monkeypatch.setattr(clip_module, "_cached_tag_file", lambda cfg: None)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.perf_counter()
    loaded = load_clip_embedder("ViT-B-32", "laion2b_s34b_b79k")
    assert time.perf_counter() - started < 10
    assert loaded.embedder is None
    assert "ViT-B-32/laion2b_s34b_b79k are not in the local cache" in loaded.reason
    assert "127.0.0.1 is unreachable" in loaded.reason


def test_cached_tag_loads_offline_with_the_tags_preprocessing(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A tag whose weights are already in the HF cache loads without asking the hub, with the tag's
    own mean/std and QuickGELU setting (the tag and cache are simulated around the tiny model)."""
    import huggingface_hub
    import open_clip
    import torch

    weights = tmp_path / "open_clip_model.safetensors.pt"
    torch.save(ClipEmbedder(TINY_TEST_MODEL, None, random_init=True, seed=6).model.state_dict(), weights)
    tag_cfg = {"hf_hub": "example/tiny-clip/", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25),
               "interpolation": "bilinear", "resize_mode": "shortest", "quick_gelu": True}
    real_cfg = open_clip.get_pretrained_cfg
    monkeypatch.setattr(open_clip, "get_pretrained_cfg",
                        lambda model, tag: tag_cfg if tag == "tiny-tag" else real_cfg(model, tag))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: str(weights))
    monkeypatch.setattr(clip_module, "_probe", lambda url: pytest.fail("the hub must not be asked"))
    embedder = ClipEmbedder(TINY_TEST_MODEL, "tiny-tag")
    assert embedder.identity["pretrained"] == "tiny-tag" and embedder.identity["quick_gelu"] is True
    normalise = [t for t in embedder.preprocess.transforms if type(t).__name__ == "Normalize"][0]
    assert tuple(normalise.mean) == (0.5, 0.5, 0.5) and tuple(normalise.std) == (0.25, 0.25, 0.25)
    assert embedder.embed(covers()).shape == (5, 16)
