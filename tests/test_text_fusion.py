"""Fusion of head and text: text dropped where nothing was read; weights that lean on text when the
image adds little and ignore text that does not help; weights chosen on validation covers only."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from coverlens.errors import ModelError
from coverlens.text.fusion import Term, accuracy, choose_weights, fuse
from coverlens.text.training import fit_text_signal, head_validation, load_text_signal, save_text_signal
from coverlens.workspace import Workspace


def one_hot_ish(labels: np.ndarray, k: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    logits = rng.normal(size=(len(labels), k))
    logits[np.arange(len(labels)), labels] += strength
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.fixture
def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    return {"labels": labels, "weak_head": one_hot_ish(labels, 4, 0.3, rng),
            "good_head": one_hot_ish(labels, 4, 2.5, rng), "good_text": one_hot_ish(labels, 4, 3.0, rng),
            "noise_text": one_hot_ish(rng.integers(0, 4, 400), 4, 3.0, rng), "mask": rng.random(400) < 0.8}


def test_the_text_term_is_dropped_where_nothing_was_read(signals: dict[str, np.ndarray]) -> None:
    terms = {"head": Term(signals["good_head"]), "text": Term(signals["good_text"], signals["mask"])}
    fused = fuse(terms, {"head": 1.0, "text": 1.0})
    silent = ~signals["mask"]
    np.testing.assert_allclose(fused[silent], signals["good_head"][silent])
    assert not np.allclose(fused[~silent], signals["good_head"][~silent])
    np.testing.assert_allclose(fused.sum(axis=1), 1.0)
    only_text = fuse(terms, {"head": 0.0, "text": 1.0})  # no text and no head weight: the head, not nothing
    np.testing.assert_allclose(only_text[silent], signals["good_head"][silent])


def test_leans_fully_on_text_when_the_image_adds_little(signals: dict[str, np.ndarray]) -> None:
    labels = signals["labels"]
    terms = {"head": Term(signals["weak_head"]), "text": Term(signals["good_text"], signals["mask"])}
    chosen = choose_weights(terms, labels)
    assert chosen.weights["text"] > 0 and chosen.weights["text"] >= 2 * chosen.weights["head"]
    assert chosen.validation["accuracy"] > chosen.validation["head_accuracy"] + 0.3


def test_ignores_text_that_does_not_help(signals: dict[str, np.ndarray]) -> None:
    terms = {"head": Term(signals["good_head"]), "text": Term(signals["noise_text"], signals["mask"])}
    chosen = choose_weights(terms, signals["labels"])
    assert chosen.weights == {"head": 1.0, "text": 0.0}
    assert chosen.validation["accuracy"] == chosen.validation["head_accuracy"]


def many_genres_few_covers(seed: int, covers: int, text_strength: float | None) -> dict[str, np.ndarray]:
    """A 33-genre set with 4 validation covers per genre (as a sample of book-covers-gray33 gives):
    a useful head; text read on 70% of covers, telling the genre (strength) or confidently random (None)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 33, covers)
    head = one_hot_ish(labels, 33, 2.0, rng)
    said = labels if text_strength is not None else rng.integers(0, 33, covers)
    text = one_hot_ish(said, 33, text_strength or 3.0, rng)
    return {"labels": labels, "terms": {"head": Term(head), "text": Term(text, rng.random(covers) < 0.7)}}


def test_text_that_wins_on_few_validation_covers_by_chance_is_ignored() -> None:
    from coverlens.text.fusion import _best, weight_grid

    valid = many_genres_few_covers(7, 132, None)  # seed 7: the noise happens to fix a cover or two here
    plain, _, _ = _best(valid["terms"], valid["labels"], weight_grid(valid["terms"]))
    assert plain["text"] > 0  # the best grid point alone would let this noise in
    chosen = choose_weights(valid["terms"], valid["labels"])
    assert chosen.weights == {"head": 1.0, "text": 0.0}
    assert chosen.validation["fell_back_to_head"] == 1.0
    assert chosen.validation["held_out_accuracy"] <= chosen.validation["head_accuracy"]
    fresh = many_genres_few_covers(1007, 4000, None)  # what the plain choice would have done to new covers
    head_only = accuracy(fresh["terms"]["head"].proba, fresh["labels"])
    assert accuracy(fuse(fresh["terms"], plain), fresh["labels"]) < head_only
    assert accuracy(fuse(fresh["terms"], chosen.weights), fresh["labels"]) == head_only


def test_weak_but_real_text_on_few_validation_covers_is_kept() -> None:
    valid = many_genres_few_covers(7, 132, 1.5)
    chosen = choose_weights(valid["terms"], valid["labels"])
    assert chosen.weights["text"] > 0 and "fell_back_to_head" not in chosen.validation
    assert chosen.validation["held_out_accuracy"] > chosen.validation["head_accuracy"]
    fresh = many_genres_few_covers(1007, 4000, 1.5)
    assert (accuracy(fuse(fresh["terms"], chosen.weights), fresh["labels"])
            > accuracy(fresh["terms"]["head"].proba, fresh["labels"]) + 0.05)


def test_a_knn_term_joins_when_given(signals: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(1)
    knn = one_hot_ish(signals["labels"], 4, 2.0, rng)
    terms = {"head": Term(signals["weak_head"]), "text": Term(signals["noise_text"], signals["mask"]),
             "knn": Term(knn)}
    chosen = choose_weights(terms, signals["labels"])
    assert chosen.weights["knn"] > 0 and chosen.weights["text"] == 0


def fake_head(ids: list[str], genres: list[str], classes: list[str]) -> np.ndarray:
    """A weak, deterministic stand-in for the image head's probabilities on these covers."""
    rows = []
    for cid, genre in zip(ids, genres, strict=True):
        noise = np.frombuffer(hashlib.sha256(cid.encode()).digest()[:len(classes)], dtype=np.uint8) / 255.0
        noise[classes.index(genre)] += 0.2
        rows.append(noise / noise.sum())
    return np.array(rows)


def catalog_rows(workspace: Workspace) -> list[dict[str, str]]:
    with open(workspace.catalog_file, newline="") as handle:
        return list(csv.DictReader(handle))


def fit_on(workspace: Workspace, texts: dict[str, str]):
    from coverlens.classifier.model_file import read_sidecar

    classes = list(read_sidecar(workspace)["classes"])
    rows = [r for r in catalog_rows(workspace) if r["split"] == "train" and r["status"] == "ok"]
    train_ids, train_genres = [r["id"] for r in rows], [r["genre"] for r in rows]
    valid_ids, valid_genres = head_validation(workspace)
    signal = fit_text_signal(train_ids, train_genres, texts, classes, valid_ids,
                             fake_head(valid_ids, valid_genres, classes), folds=3)
    return valid_ids, signal


def test_fusion_weights_come_from_validation_covers_of_the_train_split_only(copied_workspace: Workspace) -> None:
    rows = catalog_rows(copied_workspace)
    word = {genre: f"WORD{i}X" for i, genre in enumerate(sorted({r["genre"] for r in rows}))}
    texts = {r["id"]: f"{word[r['genre']]} LIVE" for r in rows}
    valid_ids, signal = fit_on(copied_workspace, texts)
    split_of = {r["id"]: r["split"] for r in rows}
    assert valid_ids and all(split_of[cid] == "train" for cid in valid_ids)
    assert signal.fusion.weights["text"] > 0 and signal.fusion.validation["covers"] == len(valid_ids)

    # change every test-split cover's label and text: neither the validation covers nor the weights move
    genres = sorted(word)
    for row in rows:
        if row["split"] == "test":
            row["genre"] = genres[(genres.index(row["genre"]) + 1) % len(genres)]
            texts[row["id"]] = "MISLEADING " + word[row["genre"]]
    with open(copied_workspace.catalog_file, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    valid_again, signal_again = fit_on(copied_workspace, texts)
    assert valid_again == valid_ids
    assert signal_again.fusion.weights == signal.fusion.weights
    assert signal_again.fusion.validation == signal.fusion.validation

    save_text_signal(signal, copied_workspace.model_dir)
    loaded = load_text_signal(copied_workspace.model_dir)
    assert loaded.fusion.weights == signal.fusion.weights and loaded.classes == signal.classes


def test_validation_covers_outside_the_train_split_are_refused() -> None:
    with pytest.raises(ModelError, match="not in the train split"):
        fit_text_signal(["a", "b", "c", "d"], ["x", "y", "x", "y"], {"a": "XX", "b": "YY", "c": "XX", "d": "YY"},
                        ["x", "y"], ["z"], np.array([[0.5, 0.5]]), folds=2)
