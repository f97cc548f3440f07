"""The text genre model: TF-IDF of character n-grams (and words) -> logistic regression.

Character n-grams (`char_wb`) carry most of the signal: RapidOCR's rec model often drops the spaces
between English words ("COMPLETEWORKSWITHCLARINET"), which breaks word features but leaves the
character n-grams of every word intact. Word unigrams can be added (`words=True`); on album-covers-5
they did not help.

A cover with no text gets no prediction: `predict_proba` returns a mask, and callers (fusion)
drop the text term there instead of using a made-up distribution.

On disk (beside the fastai model): `text_model.joblib` plus `text_model.json`, the sidecar with
the classes, settings, training facts and the joblib file's sha256. Loading unpickles, so only the
workspace's own file is loaded, and only when its bytes match the sidecar.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import ModelError
from coverlens.workspace import atomic_path, read_json, write_json_atomic

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline

MODEL_FILE = "text_model.joblib"
SIDECAR_FILE = "text_model.json"
SIDECAR_FORMAT = 1


@dataclass(frozen=True)
class TextModelSettings:
    char_min: int = 2
    char_max: int = 5
    # chosen by out-of-fold accuracy on album-covers-5's train split (benchmarks/eval_text_fusion.py):
    # char 2-5 alone 0.431, with words 0.420, C 1/16 0.423/0.425, char 1-4 0.422, char 2-6 0.423
    words: bool = False
    C: float = 4.0
    min_df: int = 2
    max_features: int | None = 200_000
    seed: int = 0
    # the library's metadata text (album/artist, book title/authors) appended to the words read on the
    # cover, for training and prediction alike (coverlens.text.metadata); "" where the library has none
    metadata: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextModelSettings:
        # a model saved before metadata existed was trained on the words alone
        return cls(**{"metadata": False, **{k: v for k, v in data.items() if k in cls.__dataclass_fields__}})


def normalise(text: str) -> str:
    """Lower case, one space between the pieces (lines are joined with newlines)."""
    return " ".join(text.lower().split())


def has_text(texts: Sequence[str]) -> np.ndarray:
    import numpy as np

    return np.array([len(normalise(t)) >= 2 for t in texts], dtype=bool)


def build_pipeline(settings: TextModelSettings, n_samples: int) -> Pipeline:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    min_df = settings.min_df if n_samples >= 20 * settings.min_df else 1  # tiny sets keep every n-gram
    parts = [("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(settings.char_min, settings.char_max),
                                       min_df=min_df, sublinear_tf=True, max_features=settings.max_features,
                                       preprocessor=normalise, dtype=_float32()))]
    if settings.words:
        # min_df 1 for words: a set whose words are all distinct must not leave this part empty
        parts.append(("words", TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w\w+\b", min_df=1,
                                               sublinear_tf=True, preprocessor=normalise, dtype=_float32())))
    classifier = LogisticRegression(C=settings.C, max_iter=2000, random_state=settings.seed)
    return make_pipeline(FeatureUnion(parts), classifier)


def _float32() -> Any:
    import numpy as np

    return np.float32


class TextGenreModel:
    """A fitted text model: `classes` and `predict_proba(texts) -> (proba, has_text mask)`."""

    def __init__(self, pipeline: Pipeline, settings: TextModelSettings, facts: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.classes: list[str] = [str(c) for c in pipeline.classes_]
        self.facts = facts or {}

    @classmethod
    def fit(cls, texts: Sequence[str], genres: Sequence[str], settings: TextModelSettings | None = None
            ) -> TextGenreModel:
        """Fit on the covers that carry text; covers without text teach nothing and are left out."""
        import numpy as np

        settings = settings or TextModelSettings()
        mask = has_text(texts)
        kept_texts = [t for t, keep in zip(texts, mask, strict=True) if keep]
        kept_genres = np.asarray(genres, dtype=object)[mask]
        if len(set(kept_genres)) < 2:
            raise ModelError(f"the text model needs text on covers of at least two genres; {len(kept_texts)} of "
                             f"{len(texts)} covers carry text, in {len(set(kept_genres))} genre(s)")
        pipeline = build_pipeline(settings, len(kept_texts))
        started = time.perf_counter()
        pipeline.fit(kept_texts, kept_genres)
        facts = {"covers": len(texts), "covers_with_text": len(kept_texts),
                 "fit_seconds": round(time.perf_counter() - started, 2)}
        return cls(pipeline, settings, facts)

    def predict_proba(self, texts: Sequence[str], classes: Sequence[str] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n, k) and the has-text mask; rows without text are all zero ("no evidence").

        With `classes`, columns follow that order (a genre the text model never saw gets 0).
        """
        import numpy as np

        mask = has_text(texts)
        order = list(classes) if classes is not None else self.classes
        proba = np.zeros((len(texts), len(order)), dtype=np.float64)
        if mask.any():
            raw = self.pipeline.predict_proba([t for t, keep in zip(texts, mask, strict=True) if keep])
            proba[mask] = align_columns(raw, self.classes, order)
        return proba, mask

    # persistence -------------------------------------------------------------------------

    def save(self, model_dir: Path, trained_on: dict[str, Any] | None = None) -> tuple[Path, Path]:
        """Write the joblib file, then its sidecar; a crash in between leaves a pair `load` refuses."""
        import joblib

        from coverlens.weights import sha256_of

        model_dir.mkdir(parents=True, exist_ok=True)
        model_path, sidecar_path = model_dir / MODEL_FILE, model_dir / SIDECAR_FILE
        with atomic_path(model_path) as tmp:
            joblib.dump(self.pipeline, tmp, compress=3)
            digest = sha256_of(tmp)
        write_json_atomic(sidecar_path, {
            "format": SIDECAR_FORMAT, "model_file": MODEL_FILE, "model_sha256": digest, "classes": self.classes,
            "settings": self.settings.to_dict(), "facts": self.facts, "trained_on": trained_on or {},
            "versions": _versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return model_path, sidecar_path

    @property
    def identity(self) -> str:
        return str(self.facts.get("model_sha256", ""))

    @classmethod
    def load(cls, model_dir: Path) -> TextGenreModel:
        import joblib

        from coverlens.weights import sha256_of

        model_path, sidecar_path = model_dir / MODEL_FILE, model_dir / SIDECAR_FILE
        if not model_path.exists() or not sidecar_path.exists():
            raise ModelError(f"no text model in {model_dir} (needs {MODEL_FILE} and {SIDECAR_FILE}); "
                             "run `coverlens train`")
        if model_path.resolve().parent != model_dir.resolve():
            raise ModelError(f"{model_path} links outside {model_dir}; only the workspace's own file is loaded")
        sidecar = read_json(sidecar_path)
        if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
            raise ModelError(f"{sidecar_path} is of an unknown format; re-run `coverlens train`")
        digest = sha256_of(model_path)
        if digest != sidecar.get("model_sha256"):
            raise ModelError(f"{model_path} does not match its sidecar (sha256 {digest[:12]}..., the sidecar "
                             f"expects {str(sidecar.get('model_sha256'))[:12]}...); re-run `coverlens train`")
        try:
            pipeline = joblib.load(model_path)
        except Exception as exc:  # unpickling raises anything
            raise ModelError(f"cannot load {model_path} ({type(exc).__name__}: {exc}); re-run `coverlens train`") \
                from exc
        model = cls(pipeline, TextModelSettings.from_dict(sidecar.get("settings", {})),
                    {**sidecar.get("facts", {}), "model_sha256": digest})
        if model.classes != sidecar.get("classes"):
            raise ModelError(f"{model_path} predicts {model.classes} but its sidecar lists {sidecar.get('classes')}")
        return model


def align_columns(proba: np.ndarray, have: Sequence[str], want: Sequence[str]) -> np.ndarray:
    """Reorder probability columns from `have` classes to `want` classes (missing ones get 0)."""
    import numpy as np

    index = {c: i for i, c in enumerate(have)}
    out = np.zeros((proba.shape[0], len(want)), dtype=np.float64)
    for j, name in enumerate(want):
        if name in index:
            out[:, j] = proba[:, index[name]]
    return out


def out_of_fold_proba(texts: Sequence[str], genres: Sequence[str], classes: Sequence[str],
                      settings: TextModelSettings | None = None, folds: int = 5
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Each cover's text probabilities from a model that never saw it (stratified k-fold).

    This is how the text term is scored on the training split without leakage: fusion weights are
    picked on these, never on the test split.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    settings = settings or TextModelSettings()
    mask = has_text(texts)
    genres_arr = np.asarray(genres, dtype=object)
    proba = np.zeros((len(texts), len(classes)), dtype=np.float64)
    rows = np.flatnonzero(mask)
    counts = {g: int((genres_arr[rows] == g).sum()) for g in set(genres_arr[rows])}
    n_splits = max(2, min(folds, min(counts.values()) if counts else 2))
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=settings.seed)
    for fit_idx, score_idx in splitter.split(rows, genres_arr[rows]):
        fitted = TextGenreModel.fit([texts[i] for i in rows[fit_idx]], genres_arr[rows[fit_idx]], settings)
        proba[rows[score_idx]] = fitted.predict_proba([texts[i] for i in rows[score_idx]], classes)[0]
    return proba, mask


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("scikit-learn", "joblib", "numpy")}
