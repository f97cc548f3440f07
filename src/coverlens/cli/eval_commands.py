"""The `evaluate` command: every registered method on the held-out split, side by side."""

from __future__ import annotations

import argparse

from coverlens.cli.common import (
    Bars,
    add_allow_incomplete,
    add_embedder_options,
    add_workspace_option,
    non_negative_int,
    open_service,
    positive_int,
    print_table,
)
from coverlens.defaults import BATCH_SIZE, EVAL_K
from coverlens.registry import REGISTRY


def _flag(name: str) -> str:
    return f"no_{name.replace('-', '_')}"


def register(subparsers: argparse._SubParsersAction) -> None:
    rows = "; ".join(row.name for _, row in REGISTRY.evaluated_rows())
    p = subparsers.add_parser(
        "evaluate", help="score the fastai head, KNN votes and baselines on the held-out split (Markdown, "
        "JSON, plots)",
        description=f"Score on the held-out split, side by side: {rows}; and the majority class. Methods whose "
        "model or weights are missing are listed as skipped, with the reason. Writes evaluation.md, "
        "evaluation.json, confusion_<method>.png and per_genre_f1.png to the workspace's reports folder.")
    p.add_argument("--tta", action="store_true", help="test-time augmentation for the genre signals (the head)")
    p.add_argument("--k", type=positive_int, default=EVAL_K,
                   help=f"neighbours of the similarity-weighted KNN votes (default {EVAL_K})")
    for name, _row in REGISTRY.evaluated_rows():
        p.add_argument(f"--no-{name}", dest=_flag(name), action="store_true",
                       help=f"leave out the {REGISTRY.spec(name).label}")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="score at most N held-out covers (a seeded sample; for quick runs)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE,
                   help=f"covers per model call (default {BATCH_SIZE})")
    add_allow_incomplete(p, "evaluation")
    add_embedder_options(p)
    add_workspace_option(p)
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    skip = {name: f"--no-{name} given" for name, _ in REGISTRY.evaluated_rows() if getattr(args, _flag(name))}
    service = open_service(args)
    try:
        report = service.run_evaluation(Bars(), skip=skip, tta=args.tta, k=args.k, limit=args.limit,
                                        seed=args.seed, batch_size=args.batch_size,
                                        allow_incomplete=args.allow_incomplete)
    finally:
        service.close()
    limited = f" (sample of {report.n_held_out:,})" if report.n_test < report.n_held_out else ""
    print(f"held-out covers: {report.n_test:,}{limited}; train references: {report.n_train:,}; "
          f"genres: {len(report.classes)}")
    print_table(report.table_rows())
    for note in report.notes:
        print(f"note: {note}")
    if report.text_coverage:
        from coverlens.text.coverage import coverage_lines

        print("text coverage (held-out covers with legible text):")
        for line in coverage_lines(report.text_coverage):
            print(f"  {line}")
    print(f"report: {report.files['markdown']}")
    return 0
