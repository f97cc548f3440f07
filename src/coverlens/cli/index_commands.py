"""The `index` command: embed the catalogued covers into the Chroma store (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from coverlens.cli.common import (
    Bars,
    add_embedder_options,
    add_store_option,
    add_workspace_option,
    open_service,
    positive_int,
)
from coverlens.defaults import BATCH_SIZE
from coverlens.registry import ALL, REGISTRY

if TYPE_CHECKING:
    from coverlens.service import CoverlensService


def register(subparsers: argparse._SubParsersAction) -> None:
    labels = " and ".join(REGISTRY.embedder(name).label for name in REGISTRY.indexed())
    p = subparsers.add_parser(
        "index", help="embed the catalogued covers into the vector store (only what is missing; resumable)",
        description="Brings the catalog up to date with the library first (the same incremental scan as "
        f"`catalog`), then embeds every distinct catalogued cover with the {labels} into one Chroma collection "
        "each. Only covers not yet stored are embedded, covers gone from the library (deleted, or moved to "
        "another genre folder) are deleted from the store, and a killed run resumes where it stopped when "
        "re-run. A library folder that is missing or empty (a disk not mounted) is refused and the store kept: "
        "re-point a moved library with `coverlens catalog NEWROOT`.")
    p.add_argument("--embedder", choices=REGISTRY.index_choices(), default=ALL,
                   help="which embedders to index with (default: all that are available)")
    p.add_argument("--rebuild", action="store_true",
                   help="drop the chosen collections and embed everything again (after a model change)")
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE,
                   help=f"covers per read/embed/write batch (default {BATCH_SIZE})")
    p.add_argument("--readers", type=positive_int, default=None, help="image decoding threads (default: by CPU count)")
    p.add_argument("--no-text", dest="text", action="store_false", default=None,
                   help="do not read the words on the covers (OCR, one process per core; only covers not read "
                   "yet); also $COVERLENS_TEXT=0")
    p.add_argument("--text", dest="text", action="store_true", help="read them even where $COVERLENS_TEXT=0")
    p.add_argument("--ray", metavar="ADDRESS|auto", default=None,
                   help="read, embed and OCR on the Ray cluster at ADDRESS (`auto`: the cluster in RAY_ADDRESS, else a "
                   "new local one), writing into the Chroma server given by --chroma-url (needs `ray[data]`)")
    p.add_argument("--thumbnails", nargs="?", const="", default=None, metavar="FOLDER",
                   help="then make the app's gallery thumbnails of the covers that have none (default folder: "
                   "the workspace's thumbs/; the app makes the missing ones on first view otherwise)")
    add_embedder_options(p)
    add_store_option(p)
    add_workspace_option(p)
    p.set_defaults(handler=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    service = open_service(args)
    bars = Bars()
    try:
        job = service.index(bars, embedder=args.embedder, rebuild=args.rebuild, batch_size=args.batch_size,
                            readers=args.readers, ray=args.ray, text=args.text)
        made = None if args.thumbnails is None else _thumbnails(service, args.thumbnails, bars)
    finally:
        service.close()
    for note in job.notes:
        print(f"coverlens: {note}", file=sys.stderr)
    print(f"indexed {job.report.covers:,} distinct covers into {job.location or '(no vector store)'}")
    for line in job.report.summary_lines():
        print(line)
    if made is not None:
        print(f"{made[0]:,} thumbnails made ({made[1]})")
    return 0


def _thumbnails(service: CoverlensService, folder: str, bars: Bars) -> tuple[int, Path]:
    from coverlens.thumbnails import Thumbnails, make_library_thumbnails, workspace_thumbnails

    thumbs = Thumbnails(Path(folder).expanduser()) if folder else workspace_thumbnails(service.workspace.root)
    return make_library_thumbnails(service, thumbs, bars), thumbs.folder
