"""The `find` command (covers by the words printed on them) and the CLI's formatting of the words read."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from coverlens.cli.common import (
    Bars,
    add_workspace_option,
    non_negative_int,
    open_service,
    positive_int,
    print_table,
)
from coverlens.defaults import SEARCH_K


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "find", help="covers by the words printed on them or in their metadata (what `index` read)",
        description="Ranked text search over the words the text stage of `coverlens index` read on the covers, "
        "and over the library's metadata text where it has some (album and artist tags, book titles and "
        "authors; column `matched` says which). "
        "Matches inside words and across missing spaces (OCR often drops them), tolerates misreadings, "
        "and ranks by BM25; the matched part of each cover's text is shown in [brackets].")
    p.add_argument("query", help="the words to look for (any case)")
    p.add_argument("-k", type=positive_int, default=SEARCH_K, help=f"how many covers (default {SEARCH_K})")
    p.add_argument("--offset", type=non_negative_int, default=0, help="skip this many first (next page: --offset K)")
    p.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_find)


def cmd_find(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        found = service.find(args.query, k=args.k, offset=args.offset)
    finally:
        service.close()
    if args.json:
        print(json.dumps([{"rank": args.offset + n, "score": round(m.score, 4), "id": m.id, "path": m.path,
                           "file": str(m.file) if m.file else None, "source": m.source, "genre": m.genre,
                           "matched": m.snippet, "exact": m.exact, "text": m.text, "matched_in": m.matched_in,
                           "metadata": m.metadata, "metadata_matched": m.metadata_snippet}
                          for n, m in enumerate(found, start=1)], indent=2))
        return 0
    if not found:
        print(f"no cover carries {args.query!r}")
        return 0
    print_table([{"#": args.offset + n, "score": f"{m.score:.2f}", "genre": m.genre or "-",
                  "path": str(m.file or m.path), "matched": m.matched_in, "matched text": m.shown()}
                 for n, m in enumerate(found, start=1)])
    return 0


class TextBars(Bars):
    """The CLI's progress for text training: bars for passes over covers, and each step said on stderr."""

    def __call__(self, fraction: float, message: str) -> None:
        print(f"coverlens: {message}", file=sys.stderr, flush=True)


def _scores(found: Any) -> str:
    return ", ".join(f"{s.genre} {s.score:.2f}" for s in found)


def prediction_text_dict(evidence: Any) -> dict[str, Any]:
    """The JSON keys of the words read and the text/fused genres (null when they were not asked)."""
    if evidence is None:
        return {"words": None, "text_model": None, "fused": None}
    return evidence.to_dict()


def print_text_evidence(path: str, evidence: Any) -> None:
    """The words read on a cover and what the text model and the fusion make of them."""
    if evidence is None:
        return
    origin = {"stored": "stored by the text stage", "read": "read now"}.get(evidence.origin, "")
    words = " / ".join(evidence.words) if evidence.words else "(none legible)"
    print(f"\n{path}: words {f'({origin})' if origin else ''}: {words}")
    if evidence.scores:
        print(f"  text model: {_scores(evidence.scores)}")
    if evidence.fused:
        print(f"  fused (head + text, weights {evidence.weights}): {_scores(evidence.fused)}")
    for note in evidence.notes:
        print(f"  ({note})")
