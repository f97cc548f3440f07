"""The exported model on disk: `model.pkl` (fastai export) plus its sidecar `model.json`.

The sidecar says what the model is (classes, arch, image size, preprocessing), what it was
trained on (the catalog split: count + a hash of the cover ids), how well it did, and the model
file's sha256: its identity. Loading refuses a model whose bytes no longer match that hash, and
`load_learner` (which unpickles) is only ever pointed at this workspace's own model file.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import ModelError
from coverlens.weights import sha256_of
from coverlens.workspace import Workspace, atomic_path, read_json, write_json_atomic

if TYPE_CHECKING:
    from fastai.learner import Learner

MODEL_FILE = "model.pkl"
SIDECAR_FILE = "model.json"
SIDECAR_FORMAT = 1


def model_paths(workspace: Workspace) -> tuple[Path, Path]:
    return workspace.model_dir / MODEL_FILE, workspace.model_dir / SIDECAR_FILE


def ids_digest(ids: Iterable[str]) -> str:
    """A fingerprint of a set of cover ids (order does not matter)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def export_model(learn: Learner, workspace: Workspace, facts: dict[str, Any]) -> tuple[Path, Path, str]:
    """Export to a temporary file, hash it, move it into place, then write the sidecar.

    An interrupted export leaves the previous model untouched; a crash between the two renames
    leaves a sidecar whose hash does not match, which `load_verified` refuses (never a silent mix).
    """
    model_path, sidecar_path = model_paths(workspace)
    workspace.model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learn.export(tmp)
        digest = sha256_of(tmp)
    sidecar = {"format": SIDECAR_FORMAT, "model_file": MODEL_FILE, "model_sha256": digest, **facts}
    write_json_atomic(sidecar_path, sidecar)
    return model_path, sidecar_path, digest


def read_sidecar(workspace: Workspace) -> dict[str, Any]:
    model_path, sidecar_path = model_paths(workspace)
    if not model_path.exists():
        raise ModelError(f"no model in {workspace.root}; run `coverlens train`")
    if not sidecar_path.exists():
        raise ModelError(f"{model_path} has no {SIDECAR_FILE} beside it (not written by `coverlens train`, "
                         "or written by an interrupted run); re-run `coverlens train`")
    sidecar = read_json(sidecar_path)
    if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
        raise ModelError(f"{sidecar_path} is of an unknown format; re-run `coverlens train`")
    return sidecar


def load_verified(workspace: Workspace, *, cpu: bool = True) -> tuple[Learner, dict[str, Any]]:
    """The exported learner and its sidecar, after checking the file is the one we wrote."""
    sidecar = read_sidecar(workspace)
    model_path, _ = model_paths(workspace)
    digest = sha256_of(model_path)
    if digest != sidecar.get("model_sha256"):
        raise ModelError(f"model file changed on disk: {model_path} (sha256 {digest[:12]}..., the sidecar "
                         f"expects {str(sidecar.get('model_sha256'))[:12]}...); re-run `coverlens train`")
    import coverlens.classifier.loader  # noqa: F401  (the unpickler imports the loader classes from here)
    from coverlens.classifier.arch import import_fastai

    import_fastai()
    from fastai.learner import load_learner

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the insecure-pickle warning: this is our own checked file
            learn = load_learner(model_path, cpu=cpu)
    except Exception as exc:  # unpickling raises anything; name the file and the way out
        raise ModelError(f"cannot load {model_path} with this coverlens/fastai version "
                         f"({type(exc).__name__}: {exc}); re-run `coverlens train`") from exc
    classes = list(sidecar.get("classes") or [])
    n_out = getattr(learn, "n_out", None)
    if not classes or (n_out is not None and n_out != len(classes)):
        raise ModelError(f"{model_path} predicts {n_out} classes but its sidecar lists {len(classes)}; "
                         "re-run `coverlens train`")
    return learn, sidecar
