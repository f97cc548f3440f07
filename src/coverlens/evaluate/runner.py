"""`run_evaluation`: the held-out covers through every available method, scored side by side.

Collaborators (classifier, embedders, stored vectors) are handed in; `collaborators.py` builds
the real ones. A method whose collaborator is missing becomes a skipped row with the reason;
nothing is ever estimated or filled in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coverlens.defaults import BASELINE_K, BATCH_SIZE, EVAL_K
from coverlens.errors import ArgumentError, WorkspaceError
from coverlens.evaluate.methods import MAJORITY, Method, align_columns, knn_proba, majority_proba
from coverlens.evaluate.metrics import compute_metrics
from coverlens.evaluate.passes import CoverRef, Feed, PassResult, Progress, run_pass, signal_feed
from coverlens.evaluate.report import EvaluationReport, MethodResult, write_report
from coverlens.evaluate.sources import StoredReferences, VectorSource, chroma_vector_source

if TYPE_CHECKING:
    import numpy as np

    from coverlens.embedders import Embedder
    from coverlens.registry import EvalRow, GenreModel, Registry
    from coverlens.workspace import Workspace


@dataclass
class Split:
    ids: list[str]
    paths: list[CoverRef]  # each opened with the one cover reader (embedded pictures too)
    labels: np.ndarray  # class indices


def load_splits(workspace: Workspace, *, limit: int | None, seed: int) -> tuple[list[str], Split, Split, int]:
    """(classes, train, test, held-out count) from the catalog; `limit` samples the test covers.

    Only labelled covers count: unlabelled ones (split "unlabelled") are never scored and their
    empty genre is never a class.
    """
    import numpy as np

    from coverlens.catalog import distinct_covers, labelled_covers, library_root, load_catalog

    covers = labelled_covers(distinct_covers(load_catalog(workspace)))
    root = library_root(workspace)
    train, test = covers[covers["split"] == "train"], covers[covers["split"] == "test"]
    if test.empty or train.empty:
        raise WorkspaceError(f"the catalog in {workspace.root} has {len(train)} train and {len(test)} test "
                             "covers; evaluation needs both (re-run `coverlens catalog` with more covers)")
    held_out = len(test)
    if limit is not None and limit < held_out:
        test = test.sample(n=limit, random_state=seed).sort_values("id")
    classes = sorted(set(covers["genre"]))
    index = {genre: i for i, genre in enumerate(classes)}

    def split(frame: Any) -> Split:
        return Split(list(frame["id"]), [CoverRef(root, str(p), str(s or "file"))
                                         for p, s in zip(frame["path"], frame["source"], strict=True)],
                     np.array([index[g] for g in frame["genre"]], dtype=np.int64))

    return classes, split(train), split(test), held_out


def _references(slug: str, stored: StoredReferences | None, train: Split, train_pass: PassResult
                ) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Train vectors and labels for one KNN row: stored ones first, then the freshly embedded."""
    import numpy as np

    label_of = dict(zip(train.ids, train.labels, strict=True))
    parts, ids, said = [], [], []
    if stored is not None and stored.vectors is not None:
        parts.append(stored.vectors)
        ids += stored.ids
        said.append(f"{len(stored.ids):,} stored")
    if slug in train_pass.outputs:
        parts.append(train_pass.outputs[slug])
        ids += [train.ids[i] for i in train_pass.rows[slug]]
        said.append(f"{len(train_pass.rows[slug]):,} embedded")
    if not parts:
        return None
    return np.concatenate(parts), np.array([label_of[i] for i in ids]), " + ".join(said)


def run_evaluation(
    workspace: Workspace,
    *,
    signals: Mapping[str, GenreModel] | None = None,
    embedders: Mapping[str, Embedder] | None = None,
    unavailable: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    tta: bool = False,
    k: int = EVAL_K,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    vector_source: VectorSource | None = None,
    progress: Callable[[str], Progress] | None = None,
    write: bool = True,
) -> EvaluationReport:
    """Score every registered row on the held-out covers; write the report files when `write`.

    Rows come from the registry, in its order: each genre signal (`signals`: name -> a model with
    `.classes` and `.predict_proba(images, tta=)`), each embedder's KNN vote (`embedders`: name ->
    an `Embedder`), then the chance row. `unavailable` maps a row's slug to why its collaborator is
    missing. `vector_source` gives stored train vectors (default: the workspace's Chroma store).
    """
    import numpy as np

    from coverlens.registry import REGISTRY

    registry = registry or REGISTRY
    if k < 1 or batch_size < 1 or (limit is not None and limit < 1):
        raise ArgumentError(f"k, batch_size and limit must be at least 1, got {k}, {batch_size}, {limit}")
    classes, train, test, held_out = load_splits(workspace, limit=limit, seed=seed)
    rows = dict(registry.evaluated_rows())
    stored_slugs = {spec.evaluation.slug for spec in registry.embedders() if spec.indexed and spec.evaluation}
    reasons = {row.slug: row.missing or f"no {row.slug} given" for row in rows.values()}
    reasons.update(unavailable or {})
    notes: list[str] = []
    unknown = sorted((set(signals or {}) | set(embedders or {})) - set(rows))
    if unknown:
        raise ValueError(f"not registered for evaluation: {', '.join(unknown)}")
    models = {rows[name].slug: model for name, model in (signals or {}).items()}
    vectors_of = {rows[name].slug: e for name, e in (embedders or {}).items()}
    source = vector_source or chroma_vector_source(workspace)
    stored = {slug: source(e, train.ids) for slug, e in vectors_of.items() if slug in stored_slugs}
    for slug, found in stored.items():
        notes.append(f"{slug}: {found.note}")

    def missing_from(found: StoredReferences | None) -> set[int]:
        have = set(found.ids) if found is not None else set()
        return {i for i, cover_id in enumerate(train.ids) if cover_id not in have}

    train_feeds = {slug: Feed(e.embed, missing_from(stored.get(slug))) for slug, e in vectors_of.items()}
    train_pass = run_pass(train.paths, {s: f for s, f in train_feeds.items() if f.wanted},
                          batch_size=batch_size, progress=progress("train covers") if progress else None)
    test_feeds = {slug: Feed(e.embed) for slug, e in vectors_of.items() if slug not in train_pass.failed}
    for slug, model in models.items():
        test_feeds[slug] = signal_feed(model, test.ids, tta)
    test_pass = run_pass(test.paths, test_feeds, batch_size=batch_size,
                         progress=progress("test covers") if progress else None)
    kept = test_pass.decoded if test_feeds else list(range(len(test.ids)))  # the chance row needs no image
    y_true = test.labels[kept]
    for name, done in (("train", train_pass), ("test", test_pass)):
        if done.unreadable:
            shown = "; ".join(f"{p}: {r}" for p, r in done.unreadable[:5])
            notes.append(f"{len(done.unreadable)} {name} covers could not be opened and were left out "
                         f"({shown})")
    if not kept:
        raise WorkspaceError(f"none of the {len(test.ids)} test covers could be opened")
    failed = {**train_pass.failed, **test_pass.failed}

    def scored(method: Method, proba: np.ndarray, seconds: float, note: str = "") -> MethodResult:
        return MethodResult(method.slug, method.name, compute_metrics(y_true, proba, classes), seconds, note)

    def skipped(row: EvalRow) -> MethodResult:
        reason = failed.get(row.slug) or reasons[row.slug]
        if row.reason_prefix and not reason.startswith(row.reason_prefix):
            reason = row.reason_prefix + reason
        return MethodResult(row.slug, row.name, None, None, reason)

    results: list[MethodResult] = []
    for row in rows.values():
        if row.slug not in test_pass.outputs or row.slug in failed:
            results.append(skipped(row))
        elif row.slug in models:
            results.append(_signal_row(row, models[row.slug], test_pass, classes, tta, notes, scored))
        else:
            found = stored.get(row.slug)
            references = _references(row.slug, found, train, train_pass)
            if references is None:
                failed[row.slug] = "no train cover could be opened to vote with"
                results.append(skipped(row))
                continue
            refs, labels, said = references
            row_k = row.k or k
            started = time.perf_counter()
            proba = knn_proba(test_pass.outputs[row.slug], refs, labels, len(classes), k=row_k,
                              weighted=row.weighted)
            seconds = (time.perf_counter() - started + test_pass.seconds[row.slug]
                       + train_pass.seconds.get(row.slug, 0.0) + (found.seconds if found else 0.0))
            kind = "similarity-weighted" if row.weighted else "plain majority"
            results.append(scored(Method(row.slug, row.name), proba, seconds,
                                  f"k={row_k}, {kind}; references: {said}"))
    started = time.perf_counter()
    proba = majority_proba(train.labels, len(kept), len(classes))
    top = classes[int(np.argmax(proba[0]))]
    results.append(scored(MAJORITY, proba, time.perf_counter() - started, f"always {top}"))

    from coverlens.text.coverage import text_coverage

    coverage = text_coverage(workspace, [test.ids[i] for i in kept], [classes[label] for label in y_true])
    model_seconds = sum(train_pass.seconds.values()) + sum(test_pass.seconds.values())
    report = EvaluationReport(
        workspace=str(workspace.root), classes=classes, n_test=len(kept), n_held_out=held_out,
        n_train=len(train.ids), results=results, notes=notes,
        settings={"k": k, "baseline_k": BASELINE_K, "tta": tta, "limit": limit, "seed": seed},
        decode_seconds=max(0.0, train_pass.wall_seconds + test_pass.wall_seconds - model_seconds),
        text_coverage=coverage,
    )
    return write_report(report, workspace.reports_dir) if write else report


def _signal_row(row: EvalRow, model: GenreModel, test_pass: PassResult, classes: list[str], tta: bool,
                notes: list[str], scored: Callable[..., MethodResult]) -> MethodResult:
    """A genre signal's row: its probability columns aligned to the catalog's genres."""
    model_classes = list(model.classes)
    extra, absent = set(model_classes) - set(classes), set(classes) - set(model_classes)
    if extra or absent:
        notes.append(f"{row.slug}: model genres not in the catalog (ignored): {sorted(extra)}; "
                     f"catalog genres the model never predicts: {sorted(absent)}")
    proba = align_columns(test_pass.outputs[row.slug], model_classes, classes)
    return scored(Method(row.slug, row.name), proba, test_pass.seconds[row.slug], "TTA" if tta else "")
