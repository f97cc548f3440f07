"""The text genre model: learns a genre given by a word, says "no evidence" without text, saves with its
identity and refuses a file that no longer matches its sidecar."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from coverlens.errors import ModelError
from coverlens.text.model import TextGenreModel, TextModelSettings, out_of_fold_proba

GENRE_WORDS = {"jazz": "QUARTET", "metal": "BRUTAL", "classical": "SYMPHONY"}
FILLER = ["live", "vol", "records", "the", "best", "of", "greatest", "hits", "deluxe", "edition", "remastered"]


def corpus(n_per_genre: int, seed: int, squeeze: bool = False) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, genres = [], []
    for genre, word in GENRE_WORDS.items():
        for _ in range(n_per_genre):
            words = rng.sample(FILLER, 3) + [word]
            rng.shuffle(words)
            joined = ("" if squeeze else " ").join(words)  # OCR often drops the spaces
            texts.append(joined.upper())
            genres.append(genre)
    return texts, genres


def test_learns_a_genre_given_by_a_word_even_without_spaces() -> None:
    texts, genres = corpus(15, seed=1)
    model = TextGenreModel.fit(texts + ["", "  "], genres + ["jazz", "metal"])
    assert model.classes == ["classical", "jazz", "metal"]
    assert model.facts["covers_with_text"] == 45
    test_texts, test_genres = corpus(5, seed=2, squeeze=True)
    proba, mask = model.predict_proba(test_texts)
    assert mask.all()
    predicted = [model.classes[i] for i in proba.argmax(axis=1)]
    assert predicted == test_genres


def test_no_text_is_no_evidence_and_columns_follow_the_asked_classes() -> None:
    texts, genres = corpus(10, seed=3)
    model = TextGenreModel.fit(texts, genres)
    proba, mask = model.predict_proba(["", "QUARTET LIVE", "x"], classes=["pop", "jazz", "metal", "classical"])
    assert mask.tolist() == [False, True, False]
    assert proba[0].sum() == 0 and proba[2].sum() == 0
    assert proba[1, 0] == 0 and proba[1].argmax() == 1 and proba[1].sum() == pytest.approx(1.0)


def test_out_of_fold_predictions_never_score_a_cover_with_a_model_fitted_on_it() -> None:
    # every text is unique noise: a model that saw a cover would recognise it, one that did not cannot
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 12)) for _ in range(60)]
    genres = ["a", "b", "c"] * 20
    fitted = TextGenreModel.fit(texts, genres, TextModelSettings(C=100.0))
    seen = (fitted.predict_proba(texts)[0].argmax(axis=1) == np.array([fitted.classes.index(g) for g in genres]))
    oof, mask = out_of_fold_proba(texts, genres, ["a", "b", "c"], TextModelSettings(C=100.0))
    unseen = oof.argmax(axis=1) == np.array(["abc".index(g) for g in genres])
    assert mask.all() and seen.mean() > 0.95 and unseen.mean() < 0.6


def test_save_and_load_with_identity_and_a_tampered_file_is_refused(tmp_path: Path) -> None:
    texts, genres = corpus(10, seed=4)
    model = TextGenreModel.fit(texts, genres, TextModelSettings(C=2.0))
    model_path, sidecar_path = model.save(tmp_path / "model", {"split": "train", "covers": len(texts)})
    loaded = TextGenreModel.load(tmp_path / "model")
    assert loaded.classes == model.classes and loaded.settings.C == 2.0 and len(loaded.identity) == 64
    np.testing.assert_allclose(loaded.predict_proba(texts)[0], model.predict_proba(texts)[0])
    other = TextGenreModel.fit(*corpus(10, seed=5))
    other_path, _ = other.save(tmp_path / "other")
    model_path.write_bytes(other_path.read_bytes())  # a different model file under the sidecar
    with pytest.raises(ModelError, match="does not match its sidecar"):
        TextGenreModel.load(tmp_path / "model")
    with pytest.raises(ModelError, match="no text model"):
        TextGenreModel.load(tmp_path / "empty")


def test_needs_text_on_two_genres() -> None:
    with pytest.raises(ModelError, match="at least two genres"):
        TextGenreModel.fit(["JAZZ", "", ""], ["jazz", "metal", "pop"])
