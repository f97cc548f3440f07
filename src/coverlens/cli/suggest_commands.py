"""The `suggest` command: genre suggestions for unlabelled and suspect covers, as CSV and JSON."""

from __future__ import annotations

import argparse

from coverlens.cli.common import (
    Bars,
    add_embedder_choice,
    add_store_option,
    add_workspace_option,
    open_service,
    positive_int,
    print_table,
    share,
)
from coverlens.defaults import BATCH_SIZE, SUGGEST_MIN_CONFIDENCE, SUSPECTS_LIMIT, VOTE_K


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "suggest", help="genre suggestions for unlabelled covers and for covers the engine doubts (CSV + JSON)",
        description="Suggest a genre for every unlabelled cover, and for labelled covers the engine confidently "
        "disagrees with (the head and the KNN vote agree on another genre with at least --min-confidence). "
        "Evidence: every registered genre signal that can be had (the head, a text model when registered) and the "
        "vote of the nearest labelled covers. Writes reports/suggestions.csv and .json in the workspace; the "
        "library is never changed.")
    p.add_argument("--k", type=positive_int, default=VOTE_K, help=f"labelled covers that vote (default {VOTE_K})")
    p.add_argument("--min-confidence", type=share, default=SUGGEST_MIN_CONFIDENCE,
                   help=f"the engine's confidence from which a labelled cover is doubted (default "
                   f"{SUGGEST_MIN_CONFIDENCE})")
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE,
                   help=f"covers per model call (default {BATCH_SIZE})")
    p.add_argument("--limit", type=positive_int, default=SUSPECTS_LIMIT,
                   help=f"rows printed (default {SUSPECTS_LIMIT}; the files hold all)")
    add_embedder_choice(p, "whose stored vectors vote")
    add_store_option(p)
    add_workspace_option(p)
    p.set_defaults(handler=cmd_suggest)


def cmd_suggest(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        report = service.suggest(Bars(), embedder=args.embedder, k=args.k, min_confidence=args.min_confidence,
                                 batch_size=args.batch_size)
    finally:
        service.close()
    print_table([{"kind": row["kind"], "cover": row["cover"], "filed as": row["genre"] or "-",
                  "suggested": row["suggested_genre"] or "(no evidence)", "confidence": f"{row['confidence']:.0%}",
                  "vote": f"{row['vote_genre']} {row['vote_share']:.0%}" if row["vote_genre"] else "-"}
                 for row in report.rows()[: args.limit]])
    print(report.summary())
    for note in report.notes:
        print(f"note: {note}")
    print(f"csv: {report.csv}")
    print(f"json: {report.json}")
    return 0
