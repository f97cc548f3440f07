"""The OpenCLIP comparator: image features of a pretrained CLIP model, L2-normalised.

Weights come from a pretrained tag (downloaded once into the Hugging Face / open_clip cache), a
local checkpoint file, or `local-dir:PATH` (a folder with `open_clip_config.json` and weights).
When none can be had (no network and nothing cached) `load_clip_embedder` says why instead of
raising, so callers report "CLIP comparator unavailable: <reason>" and go on without it. It never
falls back to random weights: those exist only for tests, asked for explicitly, and the identity
says so.

OpenAI and laion400m weights were trained with QuickGELU: a checkpoint file of theirs needs the
`-quickgelu` model name (e.g. `ViT-B-32-quickgelu`), else accuracy drops without an error. For
tags, the tag's own QuickGELU setting is applied.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from coverlens.defaults import MODEL_BATCH_SIZE
from coverlens.embedders import l2_normalise, torch_threads
from coverlens.errors import WeightsError
from coverlens.weights import sha256_of

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
LOCAL_DIR = "local-dir:"
RANDOM_INIT = "random-init (tests only)"
NETWORK_PROBE_SECONDS = 3.0
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
QUICKGELU_HINTS = ("openai", "laion400m")  # weights files named so need a `-quickgelu` model name

# A tiny ViT for tests: random-init, 32 px, a few thousand parameters in the image tower.
TINY_TEST_MODEL = "coverlens-tiny-test"
TINY_TEST_CONFIG: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


class ClipUnavailable(WeightsError):
    """The CLIP weights asked for cannot be had here (offline, missing file, unknown tag)."""


class ClipLoad(NamedTuple):
    embedder: ClipEmbedder | None
    reason: str | None  # why the embedder is None


def register_model_config(name: str, config: dict[str, Any], folder: Path) -> None:
    """Make a model config known to open_clip by name (it reads configs from JSON files)."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    open_clip.add_model_config(path)


def _probe(url: str) -> str | None:
    """None when the host of `url` answers on its port within a few seconds, else why not.

    huggingface_hub retries an unreachable hub for most of a minute; this fails in seconds.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=NETWORK_PROBE_SECONDS).close()
    except OSError as exc:
        return f"{host} is unreachable ({exc})"
    return None


def _cached_tag_file(tag_cfg: dict[str, Any]) -> str | None:
    """The weights of a pretrained tag if already downloaded (HF cache or ~/.cache/clip), else None."""
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo, filename = os.path.split(hub)
        names = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
        for name in names:
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = tag_cfg.get("url", "")
    if url:
        candidate = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if candidate.is_file():
            return str(candidate)
    return None


def _tag_source(tag_cfg: dict[str, Any]) -> str:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return endpoint if tag_cfg.get("hf_hub") else tag_cfg.get("url", endpoint)


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def _resolve(model_name: str, pretrained: str | None, random_init: bool, seed: int) -> tuple[
        dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(create_model_and_transforms kwargs, extra identity, pretrained tag config) or ClipUnavailable."""
    import open_clip

    if pretrained is None:
        if not random_init:
            raise ClipUnavailable("no pretrained weights given (random weights only with random_init=True)")
        config = open_clip.get_model_config(model_name)
        if config is None:
            raise ClipUnavailable(f"unknown open_clip model {model_name!r}")
        blob = json.dumps(config, sort_keys=True).encode()
        return ({"model_name": model_name, "pretrained": None},
                {"pretrained": RANDOM_INIT, "seed": seed, "config_sha256": hashlib.sha256(blob).hexdigest()}, {})
    if pretrained.startswith(LOCAL_DIR):
        folder = Path(pretrained[len(LOCAL_DIR):]).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ClipUnavailable(f"{folder}: no open_clip_config.json (expected by {LOCAL_DIR})")
        weights = _weight_files(folder)
        if not weights:
            raise ClipUnavailable(f"{folder}: no weights file ({', '.join(WEIGHT_SUFFIXES)})")
        files = {p.name: sha256_of(p) for p in [folder / "open_clip_config.json", *weights]}
        return {"model_name": f"{LOCAL_DIR}{folder}", "pretrained": None}, {"files_sha256": files}, {}
    if open_clip.get_model_config(model_name) is None:
        raise ClipUnavailable(f"unknown open_clip model {model_name!r}")
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
    if tag_cfg:
        kwargs: dict[str, Any] = {"model_name": model_name, "pretrained": pretrained,
                                  "force_quick_gelu": bool(tag_cfg.get("quick_gelu", False))}
        cached = _cached_tag_file(tag_cfg)
        if cached is None:
            problem = _probe(_tag_source(tag_cfg))
            if problem:
                raise ClipUnavailable(f"weights {model_name}/{pretrained} are not in the local cache and {problem}")
            return kwargs, {}, tag_cfg
        # Load the cached file directly (open_clip would ask the hub first), with the tag's preprocessing.
        kwargs.update(pretrained=cached, image_mean=tag_cfg.get("mean"), image_std=tag_cfg.get("std"),
                      image_interpolation=tag_cfg.get("interpolation"),
                      image_resize_mode=tag_cfg.get("resize_mode"))
        return kwargs, {}, tag_cfg
    path = Path(pretrained).expanduser()
    if path.is_file():
        if "quickgelu" not in model_name and any(t in path.name.lower() for t in QUICKGELU_HINTS):
            raise ClipUnavailable(f"{path.name} looks like OpenAI or laion400m weights, which were trained with "
                                  f"QuickGELU: use the model name {model_name}-quickgelu, or accuracy drops silently")
        return {"model_name": model_name, "pretrained": str(path)}, {"weights_sha256": sha256_of(path)}, {}
    known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
    raise ClipUnavailable(f"{pretrained!r} is neither a pretrained tag of {model_name} (known: {known}) "
                          f"nor a weights file, nor {LOCAL_DIR}FOLDER")


class ClipEmbedder:
    """OpenCLIP image features. `pretrained`: a tag, a checkpoint file, `local-dir:PATH`, or None
    with `random_init=True` (tests only; the identity records it and the seed)."""

    name = "clip"

    def __init__(self, model_name: str = DEFAULT_MODEL, pretrained: str | None = DEFAULT_PRETRAINED,
                 device: str | None = None, *, batch_size: int = MODEL_BATCH_SIZE, random_init: bool = False,
                 seed: int = 0) -> None:
        import open_clip
        import torch

        kwargs, extra, _ = _resolve(model_name, pretrained, random_init, seed)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            torch.set_num_threads(torch_threads())
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # random-init models are the same in every process
                model, _, preprocess = open_clip.create_model_and_transforms(device=self.device, **kwargs)
        except Exception as exc:  # a corrupt file, a config that does not match the weights, ...
            raise ClipUnavailable(f"open_clip could not load {model_name}/{pretrained}: {exc}") from exc
        self.model = model.eval()
        self.preprocess = preprocess  # the eval transform that belongs to these weights
        self.batch_size = batch_size
        self.model_name = model_name
        self.pretrained = pretrained
        self.dimension = self._output_dimension()
        self._identity = {"kind": "open_clip", "model": model_name, "pretrained": pretrained,
                          "quick_gelu": bool(kwargs.get("force_quick_gelu", False)) or "quickgelu" in model_name,
                          "dimension": self.dimension, **extra}

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def _output_dimension(self) -> int:
        known = getattr(self.model.visual, "output_dim", None)
        if isinstance(known, int):
            return known
        from PIL import Image

        return int(self._encode([Image.new("RGB", (8, 8))]).shape[1])

    def _encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_prepared(self.prepare(images))

    def prepare(self, images: Sequence[Image.Image]) -> Any:
        """The model input for `images` (CPU work the indexer runs ahead, in its reader thread)."""
        import torch

        return torch.stack([self.preprocess(image) for image in images])

    def embed_prepared(self, prepared: Any) -> np.ndarray:
        """L2-normalised float32 features of a `prepare`d batch."""
        import torch

        with torch.inference_mode():
            features = self.model.encode_image(prepared.to(self.device))
        return l2_normalise(features.float().cpu().numpy())

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        import numpy as np

        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [self._encode(images[i:i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts)


def load_clip_embedder(model_name: str = DEFAULT_MODEL, pretrained: str | None = DEFAULT_PRETRAINED,
                       device: str | None = None, **kwargs: Any) -> ClipLoad:
    """The CLIP embedder, or None and the reason it cannot be had (never raises for missing weights)."""
    try:
        return ClipLoad(ClipEmbedder(model_name, pretrained, device, **kwargs), None)
    except ClipUnavailable as exc:
        return ClipLoad(None, str(exc))
