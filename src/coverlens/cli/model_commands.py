"""Commands about the genre classifier: train, predict.

(`coverlens evaluate` lives in `coverlens.cli.eval_commands`, registered by the CLI's
COMMAND_MODULES next to this module; it is not defined here.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from coverlens.classifier.config import DEFAULT_LR, TrainConfig
from coverlens.cli.common import (
    add_workspace_option,
    int_at_least,
    non_negative_int,
    open_service,
    open_share,
    positive_float,
    positive_int,
    print_table,
    warn,
)
from coverlens.defaults import PREDICT_TOP_K, VOTE_K
from coverlens.errors import ImageError


def register(subparsers: argparse._SubParsersAction) -> None:
    d = TrainConfig()
    p = subparsers.add_parser("train", help="fine-tune the genre classifier on the catalog's train split")
    p.add_argument("--arch", default=d.arch,
                   help=f"mobilenet_v2 (default), resnet18/34/50 or a timm model name (default {d.arch})")
    p.add_argument("--size", type=int_at_least(32), default=d.image_size,
                   help=f"training image side in pixels ({d.image_size})")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"epochs with all layers trained ({d.epochs})")
    p.add_argument("--frozen-epochs", type=non_negative_int, default=d.frozen_epochs,
                   help=f"head-only epochs before ({d.frozen_epochs})")
    p.add_argument("--batch-size", type=int_at_least(2), default=d.batch_size, help=f"({d.batch_size})")
    p.add_argument("--frozen-blocks", type=non_negative_int, default=None,
                   help="leading backbone blocks never trained: cheaper steps, so larger images fit "
                   "(default: 14 for pretrained mobilenet_v2, else 0)")
    p.add_argument("--lr", type=positive_float, default=None, help=f"peak learning rate (default {DEFAULT_LR})")
    p.add_argument("--find-lr", action="store_true", help="pick the learning rate with fastai's lr_find")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, help=f"({d.seed})")
    p.add_argument("--label-smoothing", type=open_share, default=d.label_smoothing, help=f"({d.label_smoothing})")
    p.add_argument("--patience", type=positive_int, default=d.patience,
                   help=f"stop after this many epochs without a lower validation loss ({d.patience})")
    p.add_argument("--no-pretrained", action="store_true", help="random init instead of ImageNet weights")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--text-only", action="store_true",
                      help="(re)train only the text model and the fusion weights, beside the existing fastai model "
                      "(after the text stage of `coverlens index` finished)")
    text.add_argument("--no-text", action="store_true", help="train the fastai model only, not the text model")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser("predict", help="genre probabilities for cover images (the classifier head)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--top-k", type=positive_int, default=PREDICT_TOP_K,
                   help=f"genres to show per image ({PREDICT_TOP_K})")
    p.add_argument("--tta", action="store_true", help="average over a few crops (slower, a bit steadier)")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of a table")
    p.add_argument("--vote-k", type=positive_int, default=VOTE_K,
                   help=f"training covers in the KNN vote shown beside the head, when the covers are indexed "
                   f"({VOTE_K})")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_predict)


def cmd_train(args: argparse.Namespace) -> int:
    config = TrainConfig(
        arch=args.arch, image_size=args.size, epochs=args.epochs, frozen_epochs=args.frozen_epochs,
        batch_size=args.batch_size, frozen_blocks=args.frozen_blocks, lr=args.lr, find_lr=args.find_lr, seed=args.seed,
        label_smoothing=args.label_smoothing, patience=args.patience, pretrained=not args.no_pretrained,
    )
    service = open_service(args)
    try:
        if not args.text_only:
            _print_trained(service.train(config, progress=not args.quiet), config)
        if not args.no_text:
            from coverlens.cli.text_commands import TextBars

            done = service.train_text(None if args.quiet else TextBars())
            print(done.describe())
            for path in done.files:
                print(f"text model: {path}")
    finally:
        service.close()
    return 0


def _print_trained(result: Any, config: TrainConfig) -> None:
    for problem in result.skipped[:10]:
        print(f"skipped unreadable cover: {problem}", file=sys.stderr)
    if len(result.skipped) > 10:
        print(f"... and {len(result.skipped) - 10} more unreadable covers skipped", file=sys.stderr)
    minutes, seconds = divmod(result.seconds, 60)
    print(f"trained {config.arch} at {config.image_size}px on {result.train_covers:,} covers "
          f"(+{result.valid_covers:,} for validation) in {int(minutes)}m{seconds:04.1f}s: "
          f"validation accuracy {result.metrics['valid_accuracy']:.3f}")
    print(f"model: {result.model_path}")
    print(f"sidecar: {result.sidecar_path}", flush=True)


def cmd_predict(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        jobs = service.predict(args.images, k=args.top_k, tta=args.tta, vote_k=args.vote_k)
    finally:
        service.close()
    records = [job.prediction for job in jobs]
    votes = {job.prediction.path: job.vote for job in jobs if not job.prediction.error}
    notes = {job.prediction.path: job.notes for job in jobs}
    warn(dict.fromkeys(n for job in jobs for n in job.notes))  # once each, however many files
    if args.json:
        from coverlens.cli.text_commands import prediction_text_dict

        texts = {job.prediction.path: job.text for job in jobs}
        print(json.dumps([{**r.to_dict(), "head": r.to_dict()["scores"], **prediction_text_dict(texts.get(r.path)),
                           **_vote_dict(r.genre, votes.get(r.path)),
                           **({"warnings": notes[r.path]} if notes[r.path] else {})} for r in records], indent=2))
    else:
        from coverlens.cli.text_commands import print_text_evidence

        _print_predictions(records, votes, explained=any(notes.values()))
        for job in jobs:
            print_text_evidence(job.prediction.path, job.text)
    failed = [r for r in records if r.error]
    for record in failed:
        print(f"coverlens: error: {record.error}", file=sys.stderr)
    return ImageError.exit_code if failed else 0


def _vote_dict(head_genre: str | None, vote: Any) -> dict[str, Any]:
    if vote is None:
        return {"vote": None, "agree": None}
    return {"vote": {"genre": vote.genre, "scores": [{"genre": s.genre, "share": s.score} for s in vote.scores],
                     "evidence": [{"id": h.id, "similarity": h.similarity, "genre": h.genre, "path": h.path}
                                  for h in vote.evidence]},
            "agree": vote.genre == head_genre if vote.genre else None}


def _print_predictions(records: list[Any], votes: dict[str, Any], explained: bool = False) -> None:
    rows = [{"image": r.path, "rank": i + 1, "genre": s.genre, "probability": f"{s.score:.3f}"}
            for r in records for i, s in enumerate(r.scores)]
    if rows:
        print_table(rows)
    if not any(votes.values()):
        if votes and not explained:  # a note on stderr said why otherwise (a read-only store, ...)
            print("\n(no KNN vote: the covers are not indexed yet; run `coverlens index`)")
        return
    for record in records:
        vote = votes.get(record.path)
        if vote is None or vote.genre is None:
            continue
        share = vote.scores[0].score
        verdict = "agrees with the head" if vote.genre == record.genre else f"DISAGREES with the head ({record.genre})"
        print(f"\n{record.path}: KNN vote {vote.genre} ({share:.0%} of {len(vote.evidence)} neighbours), {verdict}")
        for hit in vote.evidence:
            print(f"  {hit.similarity:.4f}\t{hit.genre}\t{hit.path}")
