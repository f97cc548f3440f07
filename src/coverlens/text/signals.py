"""The text model and the fused prediction as registry genre signals (see `coverlens.registry`).

Both follow the registry's `GenreModel` protocol (`classes`, `predict_proba(images, tta=False)`),
so the evaluation, the suggestions and anything else that walks the registry's signals gets them
without knowing about text. A signal may also offer `predict_covers(ids, images, tta=False)`:
callers that know the covers' content ids (the evaluation does) pass them, and the words already
stored by the text stage are used instead of reading the pixels again. An id of None, or a cover
the text stage has not stored, is read by OCR with the process's one warm reader.

- text: the text model's probabilities; a cover with no legible text gets the train split's genre
  shares (an honest "no evidence" row for the table, never a guess from the pixels).
- fused: the head and the text model combined with the weights chosen on validation covers
  (`coverlens.text.fusion`); where nothing was read, the head's own probabilities.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from coverlens.errors import ModelError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from coverlens.text.ocr import OcrReader, TextLine
    from coverlens.text.training import TextSignal
    from coverlens.workspace import Workspace

NO_TEXT_MODEL = ("no text model; run `coverlens train` (or `coverlens train --text-only`) after `coverlens index` "
                 "has read the covers' text")
PRIOR_KEY = "train_genre_shares"  # in the text model sidecar's `trained_on`
HEAD_SHA_KEY = "head_model_sha256"  # the fastai model the fusion weights were chosen beside


class WarmReader:
    """One OCR reader per process, built on first use; calls are serialised (onnxruntime sessions
    are not documented as safe to call from several threads at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reader: OcrReader | None = None

    def read(self, image: Image.Image | Path | bytes) -> list[TextLine]:
        with self._lock:
            if self._reader is None:
                from coverlens.text.ocr import OcrReader, OcrSettings

                self._reader = OcrReader(OcrSettings())  # the text stage's settings: same words as stored
            return self._reader.read(image)

    @property
    def built(self) -> bool:
        return self._reader is not None


class BuildContext(Protocol):
    """What these builders use of `coverlens.registry.BuildContext` (named here: no import cycle)."""

    workspace: Workspace
    signal: Any


_SHARED = WarmReader()


def shared_reader() -> WarmReader:
    return _SHARED


def stored_texts(workspace: Workspace, ids: Sequence[str | None]) -> dict[str, str]:
    """The text the text stage stored for these ids (covers it failed to read are left out)."""
    from coverlens.text.store import text_db_path

    wanted = [i for i in ids if i]
    path = text_db_path(workspace.root)
    if not wanted or not path.exists():
        return {}
    from coverlens.text.stage import text_store_for

    with text_store_for(workspace.root, readonly=True) as store:
        return {cid: rec.text for cid, rec in store.get(wanted).items() if not rec.error}


def text_files(workspace: Workspace) -> list[Path]:
    from coverlens.text.model import SIDECAR_FILE
    from coverlens.text.training import FUSION_FILE

    return [workspace.model_dir / SIDECAR_FILE, workspace.model_dir / FUSION_FILE]


def text_stamp(ctx: BuildContext) -> Hashable:
    """The text model's and fusion file's mtimes: `coverlens train --text-only` rewrites them."""
    return tuple(p.stat().st_mtime_ns if p.exists() else None for p in text_files(ctx.workspace))


def text_check(ctx: BuildContext) -> str | None:
    return None if all(p.exists() for p in text_files(ctx.workspace)) else NO_TEXT_MODEL


class TextGenreSignal:
    """The text model over covers: stored words where known, else the words read now."""

    def __init__(self, signal: TextSignal, workspace: Workspace, reader: WarmReader,
                 prior: Sequence[float] | None = None) -> None:
        import numpy as np

        self.signal, self.workspace, self.reader = signal, workspace, reader
        self.classes: list[str] = list(signal.classes)
        k = len(self.classes)
        shares = np.asarray(prior if prior is not None and len(prior) == k else np.full(k, 1.0 / k), dtype=float)
        self.prior = shares / shares.sum()

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.signal.fusion.weights)

    def texts(self, ids: Sequence[str | None], images: Sequence[Image.Image]) -> list[str]:
        from coverlens.text.ocr import joined_text

        stored = stored_texts(self.workspace, ids)
        words = [stored[cid] if cid in stored else joined_text(self.reader.read(image))
                 for cid, image in zip(ids, images, strict=True)]
        return self.with_metadata(ids, words)

    def with_metadata(self, ids: Sequence[str | None], words: Sequence[str]) -> list[str]:
        """The model's input: the words, plus each library cover's metadata text when the model was
        trained with it (a cover outside the library has none)."""
        from coverlens.text.metadata import combine

        return combine(ids, words, self._metadata())

    def metadata_of(self, cover_id: str | None) -> str:
        """The metadata text the model reads after a cover's words ("" for none, or a model trained
        without it)."""
        return self._metadata().get(cover_id, "") if cover_id else ""

    def _metadata(self) -> Mapping[str, str]:
        """Cover id -> metadata text, as the model reads it (none for a model trained without it)."""
        from coverlens.text.metadata import catalog_metadata

        return catalog_metadata(self.workspace) if self.signal.model.settings.metadata else {}

    def proba_of_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities in `classes` order, has-text mask); rows without text are all zero."""
        return self.signal.model.predict_proba(list(texts), self.classes)

    def predict_covers(self, ids: Sequence[str | None], images: Sequence[Image.Image], tta: bool = False
                       ) -> np.ndarray:
        import numpy as np

        proba, mask = self.proba_of_texts(self.texts(ids, images))
        return np.where(mask[:, None], proba, self.prior[None, :])

    def predict_proba(self, images: Sequence[Image.Image], tta: bool = False) -> np.ndarray:
        return self.predict_covers([None] * len(images), images, tta)


class FusedGenreSignal:
    """The head and the text model by late fusion; the head alone where no text was read."""

    def __init__(self, head: Any, text: TextGenreSignal) -> None:
        if list(head.classes) != text.classes:
            raise ModelError(f"the text model was trained beside a head with genres {text.classes}, the model now "
                             f"predicts {list(head.classes)}; run `coverlens train --text-only`")
        self.head, self.text = head, text
        self.classes: list[str] = list(head.classes)

    def fuse(self, head_proba: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        from coverlens.text.fusion import Term, fuse

        proba, mask = self.text.proba_of_texts(texts)
        return fuse({"head": Term(head_proba), "text": Term(proba, mask)}, self.text.weights)

    def predict_covers(self, ids: Sequence[str | None], images: Sequence[Image.Image], tta: bool = False
                       ) -> np.ndarray:
        return self.fuse(self.head.predict_proba(images, tta=tta), self.text.texts(ids, images))

    def predict_proba(self, images: Sequence[Image.Image], tta: bool = False) -> np.ndarray:
        return self.predict_covers([None] * len(images), images, tta)


def build_text(ctx: BuildContext) -> TextGenreSignal:
    from coverlens.text.model import SIDECAR_FILE
    from coverlens.text.training import load_text_signal
    from coverlens.workspace import read_json

    signal = load_text_signal(ctx.workspace.model_dir)
    shares = read_json(ctx.workspace.model_dir / SIDECAR_FILE).get("trained_on", {}).get(PRIOR_KEY) or {}
    prior = [float(shares.get(c, 0.0)) for c in signal.classes] if shares else None
    return TextGenreSignal(signal, ctx.workspace, shared_reader(), prior)


def build_fused(ctx: BuildContext) -> FusedGenreSignal:
    """Refused when the weights were chosen beside another fastai model (retrained since)."""
    from coverlens.text.model import SIDECAR_FILE
    from coverlens.workspace import read_json

    assert ctx.signal is not None, "signals are built through Kept"
    fused_with = read_json(ctx.workspace.model_dir / SIDECAR_FILE).get("trained_on", {}).get(HEAD_SHA_KEY)
    head_sha = read_json(ctx.workspace.model_dir / "model.json").get("model_sha256")
    if fused_with and fused_with != head_sha:
        raise ModelError("the fusion weights were chosen beside another fastai model (it was retrained since); "
                         "run `coverlens train --text-only`")
    return FusedGenreSignal(ctx.signal("head"), ctx.signal("text"))  # type: ignore[arg-type]
