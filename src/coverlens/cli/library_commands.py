"""Commands about the library itself: sample-library, catalog, inspect, weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from coverlens.cli.common import (
    Bars,
    add_workspace_option,
    int_at_least,
    int_in_range,
    non_negative_int,
    open_service,
    open_share,
    positive_int,
    print_table,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample-library", help="draw a generated cover library (genre folders)")
    p.add_argument("directory", type=Path)
    p.add_argument("--genres", type=int_in_range(1, 14), default=4)
    p.add_argument("--per-genre", type=positive_int, default=40)
    p.add_argument("--size", type=int_at_least(16), default=128, help="cover side in pixels")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty folder")
    p.add_argument("--mislabelled", type=non_negative_int, default=0,
                   help="extra covers drawn in another genre's style (label noise for `suspects`)")
    p.add_argument("--near-duplicates", type=non_negative_int, default=0, help="covers that get a re-encoded copy")
    p.add_argument("--unlabelled", type=non_negative_int, default=0,
                   help="covers with no genre, at the root (their hidden genres go to hidden-genres.csv, "
                   "to score `coverlens suggest`)")
    p.set_defaults(handler=cmd_sample_library)

    p = subparsers.add_parser("catalog", help="catalog a library folder (or --manifest CSV) into the workspace")
    p.add_argument("library", type=Path, nargs="?",
                   help="folder with one sub-folder per genre (default: the one catalogued before)")
    p.add_argument("--manifest", type=Path, help="CSV with path,genre columns (paths relative to LIBRARY "
                   "or to the manifest's folder)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="split seed (default 0; kept once chosen)")
    p.add_argument("--test-fraction", type=open_share, default=None, help="held-out share (default 0.2)")
    p.add_argument("--max-pixels", type=positive_int, default=None, help="decompression bomb guard")
    p.add_argument("--source", choices=["folders", "csv", "music", "calibre"], default=None,
                   help="kind of library (default: detected; metadata.db -> calibre, audio files -> music)")
    p.add_argument("--genre-map", type=Path, default=None,
                   help="CSV (raw,genre) or JSON {raw: genre} mapping library genre text to genres")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_catalog)

    p = subparsers.add_parser("inspect", help="overview of the catalogued library (Markdown + PNG)")
    p.add_argument("--placeholder-min", type=int_at_least(2), default=None,
                   help="copies from which an image counts as a placeholder (default 20)")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_inspect)

    p = subparsers.add_parser("weights", help="make the ImageNet mobilenet_v2 checkpoint available offline")
    p.set_defaults(handler=cmd_weights)


def cmd_sample_library(args: argparse.Namespace) -> int:
    from coverlens.sample_library import make_sample_library

    paths = make_sample_library(args.directory, genres=args.genres, per_genre=args.per_genre,
                                size=args.size, seed=args.seed, overwrite=args.overwrite, progress=True,
                                mislabelled=args.mislabelled, near_duplicates=args.near_duplicates,
                                unlabelled=args.unlabelled)
    hidden = f" ({args.unlabelled} unlabelled at the root; their genres: hidden-genres.csv)" if args.unlabelled else ""
    print(f"wrote {len(paths)} covers in {args.genres} genre folders under {args.directory}{hidden}")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    import time

    service = open_service(args)
    started = time.perf_counter()
    try:
        summary = service.catalog(args.library, Bars(), manifest=args.manifest, seed=args.seed,
                                  test_fraction=args.test_fraction, max_pixels=args.max_pixels,
                                  source=args.source, genre_map=args.genre_map)
    finally:
        service.close()
    elapsed = time.perf_counter() - started
    print(f"{summary.describe()} ({elapsed:.1f}s)")
    print(f"catalog: {service.workspace.catalog_file}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        job = service.inspect(args.placeholder_min)
    finally:
        service.close()
    view, report = job.overview, job.report
    print_table([{"genre": g, **c} for g, c in sorted(view.genres.items())])
    print()
    print(f"files {view.files:,} | distinct {view.distinct:,} | unreadable {view.unreadable:,} | "
          f"byte-identical groups {len(view.duplicate_groups):,} | label conflicts {len(view.label_conflicts):,} | "
          f"placeholders {len(view.placeholders):,} | near-identical groups {view.near_duplicate_groups:,}")
    for group in view.placeholders:
        print(f"placeholder: {group.id} x{group.count} (e.g. {group.paths[0]})")
    for problem in view.problems[:10]:
        print(f"unreadable: {problem['path']}: {problem['reason']}")
    if len(view.problems) > 10:
        print(f"... and {len(view.problems) - 10} more unreadable files (see the report)")
    print(f"report: {report}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from coverlens.weights import ensure_mobilenet_v2_weights

    path = ensure_mobilenet_v2_weights()
    print(f"mobilenet_v2 ImageNet weights ready: {path}")
    return 0
