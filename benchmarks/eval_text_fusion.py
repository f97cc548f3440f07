"""Text model alone and fused with the fastai head (and the KNN vote), on a measured workspace's test split.

Needs a workspace with a catalog, a trained model (`coverlens train`), the text stage's store and,
for the KNN term, the fine-tuned collection in the vector store (`coverlens index`).

Everything is chosen without the test split: text settings by out-of-fold accuracy over the train
split, fusion weights on the head's own validation covers (see coverlens.text.fusion). The test
split is scored once at the end. Head probabilities are cached in the workspace's cache folder
(keyed by the model file's hash).

    python benchmarks/eval_text_fusion.py /work/measure/album-covers-5 [--knn] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from coverlens.text.fusion import Term, accuracy, choose_weights, fuse
from coverlens.text.model import TextGenreModel, TextModelSettings, out_of_fold_proba
from coverlens.text.stage import text_store_for
from coverlens.text.training import head_validation
from coverlens.workspace import Workspace

CANDIDATES = [
    TextModelSettings(),
    TextModelSettings(C=1.0),
    TextModelSettings(C=16.0),
    TextModelSettings(char_min=1, char_max=4),
    TextModelSettings(char_min=2, char_max=6),
    TextModelSettings(words=False),
]


def head_proba(workspace: Workspace, ids: list[str], paths: list[str]) -> np.ndarray:
    from coverlens.catalog import library_root
    from coverlens.classifier import load_classifier
    from coverlens.classifier.model_file import read_sidecar
    from coverlens.images import open_image

    digest = read_sidecar(workspace)["model_sha256"][:16]
    cache = workspace.cache_dir / f"text-eval-head-{digest}.npz"
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        data = np.load(cache)
        known = dict(zip(data["ids"].tolist(), data["proba"], strict=True))
    todo = [(i, p) for i, p in zip(ids, paths, strict=True) if i not in known]
    if todo:
        started = time.perf_counter()
        classifier = load_classifier(workspace)
        root = library_root(workspace)
        for start in range(0, len(todo), 64):
            chunk = todo[start:start + 64]
            proba = classifier.predict_proba([open_image(root / p) for _, p in chunk])
            known.update(zip([i for i, _ in chunk], proba, strict=True))
            print(f"  head: {min(start + 64, len(todo))}/{len(todo)} covers", file=sys.stderr, flush=True)
        np.savez(cache, ids=np.array(list(known)), proba=np.stack(list(known.values())))
        print(f"  head probabilities for {len(todo)} covers in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    return np.stack([known[i] for i in ids]).astype(np.float64)


def knn_proba(workspace: Workspace, queries: list[str], train_ids: list[str], train_labels: np.ndarray,
              n_classes: int, k: int = 10) -> np.ndarray:
    """The KNN vote of each query among train covers (itself excluded), from the stored fine-tuned vectors."""
    from coverlens.search.vote import knn_scores
    from coverlens.store import CoverStore

    with CoverStore.open(workspace) as store:
        info = next(i for i in store.list_collections() if i.embedder == "finetuned")
        stored = store.collection_for("finetuned", info.identity).fetch()
    row = {cid: r for r, cid in enumerate(stored.ids)}
    train_rows = np.array([row[c] for c in train_ids])
    sims = stored.vectors[[row[q] for q in queries]] @ stored.vectors[train_rows].T
    position = {cid: j for j, cid in enumerate(train_ids)}
    for i, q in enumerate(queries):
        if q in position:
            sims[i, position[q]] = -np.inf  # a cover is never its own neighbour
    return knn_scores(sims, train_labels, n_classes, k=k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--knn", action="store_true", help="also try the KNN vote as a third term")
    parser.add_argument("--quick", action="store_true", help="only the default text settings")
    parser.add_argument("--line-confidence", default="0.5,0.7,0.85",
                        help="minimum OCR line confidences to try for the text features (chosen on train OOF)")
    parser.add_argument("--read-only", action="store_true",
                        help="only covers the text stage has read (while it runs: it reads in id order, a random "
                             "sample); every row, the head's included, is then scored on that sample")
    parser.add_argument("--text-settings", help="JSON of TextModelSettings fields: skip the search (e.g. the "
                        "choice of an earlier run's train OOF search)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from coverlens.catalog import distinct_covers, load_catalog
    from coverlens.classifier.model_file import read_sidecar

    workspace = Workspace(args.workspace.resolve())
    covers = distinct_covers(load_catalog(workspace))
    classes = list(read_sidecar(workspace)["classes"])
    index = {g: i for i, g in enumerate(classes)}
    with text_store_for(workspace.root, readonly=True) as store:
        stored = store.get(covers["id"])
    texts = {cid: rec.text for cid, rec in stored.items()}
    thresholds = [float(x) for x in args.line_confidence.split(",")] if not args.quick else [0.5]
    print(f"text store: {len(stored):,} of {len(covers):,} covers read "
          f"({sum(1 for r in stored.values() if r.error)} failures)")

    if args.read_only:
        covers = covers[covers["id"].isin(stored)].reset_index(drop=True)
        print(f"scoring only the {len(covers):,} covers read so far")
    train = covers[covers["split"] == "train"].reset_index(drop=True)
    test = covers[covers["split"] == "test"].reset_index(drop=True)
    train_ids, train_genres = list(train["id"]), list(train["genre"])
    train_texts = [texts.get(i, "") for i in train_ids]

    # coverage per genre
    print("\ntext coverage (share of covers with text), all splits:")
    has = {cid: bool(texts.get(cid, "").strip()) for cid in covers["id"]}
    coverage = {}
    for genre, group in covers.groupby("genre"):
        coverage[genre] = float(np.mean([has[c] for c in group["id"]]))
        print(f"  {genre:<14} {coverage[genre]:.1%} of {len(group):,}")
    coverage["all"] = float(np.mean(list(has.values())))
    print(f"  {'all':<14} {coverage['all']:.1%}")

    # 1. text settings by out-of-fold accuracy over the whole train split (covers with text)
    candidates = [(settings, t) for t in thresholds for settings in (CANDIDATES[:1] if t != 0.5 else CANDIDATES)]
    if args.quick:
        candidates = candidates[:1]
    if args.text_settings:
        candidates = [(TextModelSettings.from_dict(json.loads(args.text_settings)), thresholds[0])]
    labels_train = np.array([index[g] for g in train_genres])
    best_acc, oof_rows = -1.0, []
    oof_by: dict[tuple[TextModelSettings, float], tuple[np.ndarray, np.ndarray]] = {}
    for settings, threshold in candidates:
        started = time.perf_counter()
        at = [stored[i].text_at(threshold) if i in stored else "" for i in train_ids]
        oof, mask = out_of_fold_proba(at, train_genres, classes, settings)
        # scored over every train cover (no text: the train prior), so a threshold that drops covers pays
        prior = np.bincount(labels_train, minlength=len(classes)) / len(labels_train)
        acc = accuracy(np.where(mask[:, None], oof, prior), labels_train)
        oof_by[(settings, threshold)] = (oof, mask)
        oof_rows.append({"settings": settings.to_dict(), "line_confidence": threshold, "oof_accuracy": acc,
                         "with_text": float(mask.mean())})
        print(f"  text OOF accuracy {acc:.3f} (text on {mask.mean():.1%})  lines >= {threshold}  {settings}  "
              f"({time.perf_counter() - started:.0f} s)")
        if acc > best_acc:
            best_acc, (best_settings, best_threshold) = acc, (settings, threshold)
    print(f"chosen text settings (train OOF): {best_settings}, lines >= {best_threshold}")
    texts = {cid: rec.text_at(best_threshold) for cid, rec in stored.items()}
    train_texts = [texts.get(i, "") for i in train_ids]

    # 2. fusion weights on the head's validation covers
    valid_ids, valid_genres = head_validation(workspace)
    if args.read_only:
        kept = [(i, g) for i, g in zip(valid_ids, valid_genres, strict=True) if i in stored]
        valid_ids, valid_genres = [i for i, _ in kept], [g for _, g in kept]
    path_of = dict(zip(covers["id"], covers["path"], strict=True))
    head_valid = head_proba(workspace, valid_ids, [path_of[i] for i in valid_ids])
    oof, mask = oof_by[(best_settings, best_threshold)]
    pos = {cid: r for r, cid in enumerate(train_ids)}
    rows = np.array([pos[i] for i in valid_ids])
    labels_valid = np.array([index[g] for g in valid_genres])
    terms = {"head": Term(head_valid), "text": Term(oof[rows], mask[rows])}
    if args.knn:
        terms["knn"] = Term(knn_proba(workspace, valid_ids, train_ids, labels_train, len(classes)))
    fusion_2 = choose_weights({k: terms[k] for k in ("head", "text")}, labels_valid)
    fusion_3 = choose_weights(terms, labels_valid) if args.knn else None
    print(f"fusion (head+text) chosen on {len(valid_ids)} validation covers: {fusion_2.weights} "
          f"valid acc {fusion_2.validation['accuracy']:.3f} (head {fusion_2.validation['head_accuracy']:.3f})")
    if fusion_3:
        print(f"fusion (head+text+knn): {fusion_3.weights} valid acc {fusion_3.validation['accuracy']:.3f}")

    # 3. the test split, scored once
    model = TextGenreModel.fit(train_texts, train_genres, best_settings)
    test_ids = list(test["id"])
    labels_test = np.array([index[g] for g in test["genre"]])
    head_test = head_proba(workspace, test_ids, list(test["path"]))
    text_test, text_mask = model.predict_proba([texts.get(i, "") for i in test_ids], classes)
    prior = np.bincount(labels_train, minlength=len(classes)) / len(labels_train)
    text_alone = np.where(text_mask[:, None], text_test, prior)  # no text: the train prior (majority genre)
    test_terms = {"head": Term(head_test), "text": Term(text_test, text_mask)}
    rows_out = {
        "head": accuracy(head_test, labels_test),
        "text alone (prior where no text)": accuracy(text_alone, labels_test),
        "text alone, covers with text only": accuracy(text_test[text_mask], labels_test[text_mask]),
        "fused head+text": accuracy(fuse(test_terms, fusion_2.weights), labels_test),
    }
    if args.knn:
        test_terms["knn"] = Term(knn_proba(workspace, test_ids, train_ids, labels_train, len(classes)))
        rows_out["knn vote"] = accuracy(test_terms["knn"].proba, labels_test)
        rows_out["fused head+text+knn"] = accuracy(fuse(test_terms, fusion_3.weights), labels_test)
    print(f"\ntest split: {len(test_ids)} covers, {text_mask.mean():.1%} with text")
    for name, value in rows_out.items():
        print(f"  {name:<40} {value:.3f}")
    print(f"  fused - head: {100 * (rows_out['fused head+text'] - rows_out['head']):+.1f} points")
    if args.json:
        args.json.write_text(json.dumps({
            "coverage": coverage, "text_settings": best_settings.to_dict(), "line_confidence": best_threshold,
            "oof": oof_rows,
            "fusion": fusion_2.to_dict(), "fusion_knn": fusion_3.to_dict() if fusion_3 else None,
            "test": rows_out, "test_covers": len(test_ids),
            "test_genres": dict(Counter(test["genre"])),
        }, indent=2))


if __name__ == "__main__":
    main()
