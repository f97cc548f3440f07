"""Train the text signal of a workspace: the text model on the train split, then the fusion weights.

Steps (what `coverlens train` runs after the fastai model is exported):
1. `head_validation(workspace)`: the head's own validation covers (recomputed from the sidecar).
2. `fit_text_signal(...)`: the text model on all train-split covers with text; out-of-fold text
   predictions on the train split; fusion weights chosen on the head's validation covers only.
3. `save_text_signal(...)`: `text_model.joblib` + `text_model.json` (with the fusion weights).

Nothing here reads a test-split label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coverlens.errors import ModelError
from coverlens.text.fusion import FusionWeights, Term, choose_weights
from coverlens.text.model import TextGenreModel, TextModelSettings, out_of_fold_proba
from coverlens.workspace import Workspace, read_json, write_json_atomic

FUSION_FILE = "fusion.json"


def head_validation(workspace: Workspace) -> tuple[list[str], list[str]]:
    """Ids and genres of the covers the fastai head held out for validation (part of the train split).

    Recomputed deterministically from the catalog and the seed/fraction in the model sidecar, and
    checked against the sidecar's fingerprint of the training covers: a catalog changed since
    training is refused rather than silently giving other covers.
    """
    from coverlens.classifier.model_file import ids_digest, read_sidecar
    from coverlens.classifier.train import training_covers, valid_mask

    sidecar = read_sidecar(workspace)
    trained_on, config = sidecar.get("trained_on", {}), sidecar.get("config", {})
    covers = training_covers(workspace)
    if trained_on.get("ids_sha256") != ids_digest(covers["id"]):
        raise ModelError(f"the catalog of {workspace.root} changed since the model was trained (its train covers "
                         "differ from the ones the model sidecar records); re-run `coverlens train`")
    classes = list(sidecar["classes"])
    labels = covers["genre"].map({g: i for i, g in enumerate(classes)}).to_numpy()
    valid = valid_mask(labels, float(config.get("valid_fraction", 0.1)), int(config.get("seed", 0)))
    if int(valid.sum()) != int(trained_on.get("valid_covers", -1)):
        raise ModelError(f"recomputed {int(valid.sum())} validation covers, the model sidecar records "
                         f"{trained_on.get('valid_covers')}; re-run `coverlens train`")
    chosen = covers[valid]
    return list(chosen["id"]), list(chosen["genre"])


@dataclass
class TextSignal:
    model: TextGenreModel
    fusion: FusionWeights
    classes: list[str]  # the head's classes: the column order of every term


def fit_text_signal(
    train_ids: Sequence[str],
    train_genres: Sequence[str],
    texts: Mapping[str, str],
    classes: Sequence[str],
    valid_ids: Sequence[str],
    head_valid_proba: np.ndarray,
    *,
    knn_valid_proba: np.ndarray | None = None,
    settings: TextModelSettings | None = None,
    folds: int = 5,
) -> TextSignal:
    """Fit the text model on the train split and choose fusion weights on the head's validation covers.

    `valid_ids` must be a subset of `train_ids`; `head_valid_proba` (and `knn_valid_proba`) are
    (len(valid_ids), len(classes)) in `classes` order.
    """
    settings = settings or TextModelSettings()
    train_texts = [texts.get(i, "") for i in train_ids]
    model = TextGenreModel.fit(train_texts, train_genres, settings)
    oof, has = out_of_fold_proba(train_texts, train_genres, list(classes), settings, folds)
    position = {cid: row for row, cid in enumerate(train_ids)}
    missing = [cid for cid in valid_ids if cid not in position]
    if missing:
        raise ModelError(f"{len(missing)} validation covers are not in the train split (e.g. {missing[0]}); "
                         "fusion weights are only chosen on the train split's validation covers")
    rows = np.array([position[cid] for cid in valid_ids], dtype=np.int64)
    index = {g: i for i, g in enumerate(classes)}
    labels = np.array([index[train_genres[r]] for r in rows], dtype=np.int64)
    terms = {"head": Term(np.asarray(head_valid_proba)), "text": Term(oof[rows], has[rows])}
    if knn_valid_proba is not None:
        terms["knn"] = Term(np.asarray(knn_valid_proba))
    fusion = choose_weights(terms, labels)
    return TextSignal(model, fusion, list(classes))


def save_text_signal(signal: TextSignal, model_dir: Path, trained_on: dict[str, Any] | None = None) -> None:
    """Write the text model, then `fusion.json` naming the text model's hash it was chosen with."""
    signal.model.save(model_dir, trained_on)
    sidecar = read_json(model_dir / "text_model.json")
    write_json_atomic(model_dir / FUSION_FILE, {**signal.fusion.to_dict(), "classes": signal.classes,
                                                "text_model_sha256": sidecar["model_sha256"]})


def load_text_signal(model_dir: Path) -> TextSignal:
    """The saved text model and fusion weights; weights chosen with another text model are refused."""
    model = TextGenreModel.load(model_dir)
    path = model_dir / FUSION_FILE
    if not path.exists():
        raise ModelError(f"no {FUSION_FILE} in {model_dir}; run `coverlens train`")
    data = read_json(path)
    if data.get("text_model_sha256") != model.identity:
        raise ModelError(f"{path} was chosen for another text model; re-run `coverlens train`")
    return TextSignal(model, FusionWeights.from_dict(data), list(data["classes"]))
