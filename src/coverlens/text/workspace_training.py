"""Train a workspace's text signal: what `coverlens train` runs right after the fastai model is exported,
and `coverlens train --text-only` runs alone (when the text stage finished after the model was trained).

1. the train split's stored text (the text stage's store); nothing to learn from: a skip, with why;
2. the head's probabilities on its own validation covers (`training.head_validation`);
3. `training.fit_text_signal`: the text model on the train split, fusion weights on those validation
   covers only (never the test split);
4. `training.save_text_signal` beside the fastai model, recording the head's sha256 it was fused with
   and the train split's genre shares (the text row's answer for a cover without text).
The words of each cover are followed by its metadata text (album/artist, book title/authors) when the
settings say so (`TextModelSettings.metadata`: on unless $COVERLENS_METADATA_TEXT=0); genre tags never enter it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coverlens.errors import ModelError

if TYPE_CHECKING:
    from coverlens.evaluate.passes import Progress
    from coverlens.text.model import TextModelSettings
    from coverlens.workspace import Workspace


@dataclass
class TextTraining:
    """What training the text signal did, or why it was skipped (`skipped` set, nothing written)."""

    skipped: str = ""
    covers: int = 0  # train covers
    covers_with_text: int = 0  # with legible words, or metadata text when the model reads it
    covers_with_metadata: int = 0
    valid_covers: int = 0
    weights: dict[str, float] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)  # fused and head accuracy on validation covers
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.skipped:
            return f"text model skipped: {self.skipped}"
        v = self.validation
        extra = f" ({self.covers_with_metadata:,} with metadata text)" if self.covers_with_metadata else ""
        return (f"text model trained on {self.covers_with_text:,} of {self.covers:,} train covers with text{extra}; "
                f"fusion weights {self.weights} chosen on {self.valid_covers:,} validation covers "
                f"(fused {v.get('accuracy', 0):.3f} vs head {v.get('head_accuracy', 0):.3f}) in {self.seconds:.0f}s")


def _head_validation_proba(workspace: Workspace, classifier: Any, ids: list[str],
                           progress: Progress | None) -> tuple[list[str], Any]:
    """The head's probabilities on the validation covers that open (others are left out)."""
    from coverlens.catalog import distinct_covers, library_root, load_catalog
    from coverlens.evaluate.passes import CoverRef, Feed, run_pass

    covers = distinct_covers(load_catalog(workspace))
    where = {cid: (str(path), str(source or "file"))
             for cid, path, source in zip(covers["id"], covers["path"], covers["source"], strict=True)}
    root = library_root(workspace)
    refs = [CoverRef(root, *where[i]) for i in ids]  # embedded pictures are read like image files
    done = run_pass(refs, {"head": Feed(classifier.predict_proba)}, progress=progress)
    if "head" in done.failed:
        raise ModelError(f"the head failed on its validation covers: {done.failed['head']}")
    rows = done.rows.get("head", [])
    return [ids[r] for r in rows], done.outputs.get("head")


def train_text_signal(workspace: Workspace, classifier: Any, *, progress: Progress | None = None,
                      say: Callable[[str], None] = lambda message: None,
                      settings: TextModelSettings | None = None) -> TextTraining:
    """Fit and save the text model and fusion weights; a skip (nothing written) when there is no text.
    With `settings.metadata` (the default), each cover's metadata text is appended to its words."""
    from coverlens.classifier.model_file import read_sidecar
    from coverlens.classifier.train import training_covers
    from coverlens.text.metadata import catalog_metadata, combine, metadata_wanted
    from coverlens.text.model import TextModelSettings, has_text
    from coverlens.text.signals import HEAD_SHA_KEY, PRIOR_KEY, stored_texts
    from coverlens.text.store import text_db_path
    from coverlens.text.training import fit_text_signal, head_validation, save_text_signal

    started = time.perf_counter()
    if not text_db_path(workspace.root).exists():
        return TextTraining(skipped="no text store yet (run `coverlens index`, which reads the covers' text)")
    train = training_covers(workspace)
    ids, genres = list(train["id"]), list(train["genre"])
    settings = settings or TextModelSettings(metadata=metadata_wanted())
    texts = stored_texts(workspace, ids)
    unread = sum(i not in texts for i in ids)
    metadata = catalog_metadata(workspace) if settings.metadata else {}
    if metadata:
        texts = dict(zip(ids, combine(ids, [texts.get(i, "") for i in ids], metadata), strict=True))
    legible = has_text([texts.get(i, "") for i in ids])
    with_text = {g for g, ok in zip(genres, legible, strict=True) if ok}
    result = TextTraining(covers=len(ids), covers_with_text=int(legible.sum()),
                          covers_with_metadata=sum(i in metadata for i in ids))
    if len(with_text) < 2:
        result.skipped = (f"{result.covers_with_text:,} of {len(ids):,} train covers carry legible text, in "
                          f"{len(with_text)} genre(s); the text model needs text in two genres at least")
        return result
    if unread:
        say(f"text: {unread:,} of {len(ids):,} train covers have no stored text yet (the text stage has not read "
            "them); they count as covers without text")
    sidecar = read_sidecar(workspace)
    classes = list(sidecar["classes"])
    valid_ids, _ = head_validation(workspace)
    say(f"text: head probabilities on its {len(valid_ids):,} validation covers")
    valid_ids, head_proba = _head_validation_proba(workspace, classifier, valid_ids, progress)
    if not valid_ids:
        raise ModelError("none of the head's validation covers could be opened; fusion weights cannot be chosen")
    say(f"text: fitting the text model on {result.covers_with_text:,} covers (and 5 folds for the fusion weights)")
    signal = fit_text_signal(ids, genres, texts, classes, valid_ids, head_proba, settings=settings)
    counts = Counter(genres)
    trained_on = {PRIOR_KEY: {g: counts.get(g, 0) / len(genres) for g in classes},
                  HEAD_SHA_KEY: sidecar.get("model_sha256"), "train_covers": len(ids),
                  "train_covers_with_text": result.covers_with_text, "valid_covers": len(valid_ids),
                  "train_covers_with_metadata": result.covers_with_metadata}
    save_text_signal(signal, workspace.model_dir, trained_on)
    result.valid_covers = len(valid_ids)
    result.weights = dict(signal.fusion.weights)
    result.validation = {k: v for k, v in signal.fusion.validation.items()
                         if k in ("accuracy", "head_accuracy", "text_present")}
    result.seconds = time.perf_counter() - started
    result.files = [str(workspace.model_dir / name) for name in ("text_model.joblib", "text_model.json",
                                                                   "fusion.json")]
    return result
