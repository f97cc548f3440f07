"""The exported model on disk: `model.pkl` (fastai export) plus its sidecar `model.json`.

The sidecar says what the model is (classes, arch, image size, preprocessing), what it was
trained on (the catalog split: count + a hash of the cover ids), how well it did, and the model
file's sha256: its identity. Loading refuses a model whose bytes no longer match that hash, and
`load_learner` (which unpickles) is only ever pointed at this workspace's own model file.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import ModelError, WorkspaceError
from coverlens.weights import sha256_of
from coverlens.workspace import Workspace, atomic_path, read_json, remove_stale_temps, write_json_atomic

if TYPE_CHECKING:
    from fastai.learner import Learner

MODEL_FILE = "model.pkl"
SIDECAR_FILE = "model.json"
SIDECAR_FORMAT = 1
EXPORT_FIELDS = ("format", "model_file", "model_sha256")  # what export_model writes beside the given facts


def model_paths(workspace: Workspace) -> tuple[Path, Path]:
    return workspace.model_dir / MODEL_FILE, workspace.model_dir / SIDECAR_FILE


def ids_digest(ids: Iterable[str]) -> str:
    """A fingerprint of a set of cover ids (order does not matter)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def export_model(learn: Learner, workspace: Workspace, facts: dict[str, Any]) -> tuple[Path, Path, str]:
    """Export the model and its sidecar so that a crash at any point leaves a loadable pair.

    Order: export to a temporary file and hash it; write the new sidecar as `model.json.pending`;
    move the model into place; move the pending sidecar into place. A crash before the model's
    move leaves the previous pair untouched; a crash between the two moves leaves the new model
    and a pending sidecar that names its hash, which `read_sidecar` completes (never a silent mix).
    """
    model_path, sidecar_path = model_paths(workspace)
    pending = pending_sidecar_path(workspace)
    workspace.model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_exports(workspace)
    with atomic_path(model_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learn.export(tmp)
        digest = sha256_of(tmp)
        write_json_atomic(pending, {"format": SIDECAR_FORMAT, "model_file": MODEL_FILE, "model_sha256": digest,
                                    **facts})
    _promote(pending, sidecar_path)
    return model_path, sidecar_path, digest


def sidecar_facts(sidecar: dict[str, Any]) -> dict[str, Any]:
    """The facts a sidecar was exported with: what exporting the same model again needs."""
    return {k: v for k, v in sidecar.items() if k not in EXPORT_FIELDS}


def pending_sidecar_path(workspace: Workspace) -> Path:
    return workspace.model_dir / (SIDECAR_FILE + ".pending")


def remove_stale_exports(workspace: Workspace) -> None:
    """Temporary files of exports killed before their move (SIGKILL skips their clean-up); every
    hidden `.tmp` file in the model folder is one of ours (see `atomic_path`), and those of a live
    process are kept."""
    remove_stale_temps(workspace.model_dir)


def _promote(pending: Path, sidecar_path: Path) -> None:
    try:
        os.replace(pending, sidecar_path)
    except FileNotFoundError:  # a reader completed this export first (see complete_interrupted_export)
        pass


def complete_interrupted_export(workspace: Workspace) -> None:
    """Finish an export killed between moving the model and moving its sidecar.

    The pending sidecar is only promoted when the model file's hash is the one it names; a
    pending sidecar whose model never arrived is left for the next export to replace.
    """
    model_path, sidecar_path = model_paths(workspace)
    pending = pending_sidecar_path(workspace)
    if not (pending.exists() and model_path.exists()):
        return
    try:
        expected = read_json(pending).get("model_sha256")
    except (WorkspaceError, OSError, AttributeError):  # half-written or vanished: not ours to finish
        return
    if expected and sha256_of(model_path) == expected:
        _promote(pending, sidecar_path)


def read_sidecar(workspace: Workspace) -> dict[str, Any]:
    model_path, sidecar_path = model_paths(workspace)
    complete_interrupted_export(workspace)
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
    if model_path.resolve().parent != workspace.model_dir.resolve():
        # unpickling runs code: only ever the file `coverlens train` wrote here, never one linked in
        raise ModelError(f"{model_path} links to {model_path.resolve()}, outside the workspace; models are only "
                         "loaded from the workspace's own model folder: re-run `coverlens train`")
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
