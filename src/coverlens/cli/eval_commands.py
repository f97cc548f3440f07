"""The `evaluate` command: every method on the held-out split, side by side."""

from __future__ import annotations

import argparse

from coverlens.cli.common import (
    add_workspace_option,
    non_negative_int,
    positive_int,
    print_table,
    progress_bar,
    workspace_of,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score the fastai head, KNN votes and baselines on the held-out split (Markdown, "
        "JSON, plots)",
        description="Score on the held-out split, side by side: the fastai head, KNN k=5 on ImageNet features "
        "(the notebook baseline), a similarity-weighted KNN vote on fine-tuned and on CLIP embeddings, and the "
        "majority class. Methods whose model or weights are missing are listed as skipped, with the reason. "
        "Writes evaluation.md, evaluation.json, confusion_<method>.png and per_genre_f1.png to the workspace's "
        "reports folder.")
    p.add_argument("--tta", action="store_true", help="test-time augmentation for the fastai head")
    p.add_argument("--k", type=positive_int, default=10,
                   help="neighbours of the fine-tuned and CLIP KNN votes (default 10)")
    p.add_argument("--no-clip", action="store_true", help="leave out the OpenCLIP comparator")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="score at most N held-out covers (a seeded sample; for quick runs)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="covers per model call (default 64)")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from coverlens.evaluate import build_collaborators, run_evaluation

    workspace = workspace_of(args)
    workspace.require_catalog()
    collaborators = build_collaborators(workspace, clip=not args.no_clip)
    report = run_evaluation(workspace, **collaborators.as_kwargs(), tta=args.tta, k=args.k, limit=args.limit,
                            seed=args.seed, batch_size=args.batch_size, progress=progress_bar)
    limited = f" (sample of {report.n_held_out:,})" if report.n_test < report.n_held_out else ""
    print(f"held-out covers: {report.n_test:,}{limited}; train references: {report.n_train:,}; "
          f"genres: {len(report.classes)}")
    print_table(report.table_rows())
    for note in report.notes:
        print(f"note: {note}")
    print(f"report: {report.files['markdown']}")
    return 0
