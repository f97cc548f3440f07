"""Commands about the library itself: sample-library, catalog, inspect, weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from coverlens.cli.common import add_workspace_option, print_table, progress_bar, workspace_of


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample-library", help="draw a generated cover library (genre folders)")
    p.add_argument("directory", type=Path)
    p.add_argument("--genres", type=int, default=4)
    p.add_argument("--per-genre", type=int, default=40)
    p.add_argument("--size", type=int, default=128, help="cover side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty folder")
    p.add_argument("--mislabelled", type=int, default=0,
                   help="extra covers drawn in another genre's style (label noise for `suspects`)")
    p.add_argument("--near-duplicates", type=int, default=0, help="covers that get a re-encoded copy")
    p.set_defaults(handler=cmd_sample_library)

    p = subparsers.add_parser("catalog", help="catalog a library folder (or --manifest CSV) into the workspace")
    p.add_argument("library", type=Path, nargs="?",
                   help="folder with one sub-folder per genre (default: the one catalogued before)")
    p.add_argument("--manifest", type=Path, help="CSV with path,genre columns (paths relative to LIBRARY "
                   "or to the manifest's folder)")
    p.add_argument("--seed", type=int, default=None, help="split seed (default 0; kept once chosen)")
    p.add_argument("--test-fraction", type=float, default=None, help="held-out share (default 0.2)")
    p.add_argument("--max-pixels", type=int, default=None, help="decompression bomb guard")
    p.add_argument("--source", choices=["folders", "csv", "music", "calibre"], default=None,
                   help="kind of library (default: detected; metadata.db -> calibre, audio files -> music)")
    p.add_argument("--genre-map", type=Path, default=None,
                   help="CSV (raw,genre) or JSON {raw: genre} mapping library genre text to genres")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_catalog)

    p = subparsers.add_parser("inspect", help="overview of the catalogued library (Markdown + PNG)")
    p.add_argument("--placeholder-min", type=int, default=None,
                   help="copies from which an image counts as a placeholder (default 20)")
    add_workspace_option(p)
    p.set_defaults(handler=cmd_inspect)

    p = subparsers.add_parser("weights", help="make the ImageNet mobilenet_v2 checkpoint available offline")
    p.set_defaults(handler=cmd_weights)


def cmd_sample_library(args: argparse.Namespace) -> int:
    from coverlens.sample_library import make_sample_library

    paths = make_sample_library(args.directory, genres=args.genres, per_genre=args.per_genre,
                                size=args.size, seed=args.seed, overwrite=args.overwrite, progress=True,
                                mislabelled=args.mislabelled, near_duplicates=args.near_duplicates)
    print(f"wrote {len(paths)} covers in {args.genres} genre folders under {args.directory}")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    import time

    from coverlens.catalog import run_catalog

    workspace = workspace_of(args)
    started = time.perf_counter()
    summary = run_catalog(workspace, args.library, manifest=args.manifest, seed=args.seed,
                          test_fraction=args.test_fraction, max_pixels=args.max_pixels,
                          progress=progress_bar("catalog"), source=args.source, genre_map=args.genre_map)
    elapsed = time.perf_counter() - started
    print(f"{summary.describe()} ({elapsed:.1f}s)")
    print(f"catalog: {workspace.catalog_file}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from coverlens.catalog import load_catalog
    from coverlens.inspect_report import DEFAULT_PLACEHOLDER_MIN, write_inspect_report

    workspace = workspace_of(args)
    view, report = write_inspect_report(
        workspace, load_catalog(workspace), placeholder_min=args.placeholder_min or DEFAULT_PLACEHOLDER_MIN)
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
