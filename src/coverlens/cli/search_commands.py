"""Commands over the stored vectors: similar, clusters, suspects. Parse, call the service, format."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from coverlens.cli.common import (
    add_allow_incomplete,
    add_embedder_choice,
    add_embedder_options,
    add_store_option,
    add_workspace_option,
    int_at_least,
    non_negative_int,
    open_service,
    positive_int,
    print_table,
    share,
    similarity,
    warn,
)
from coverlens.defaults import DUPLICATE_THRESHOLD, SEARCH_K, SUSPECT_MIN_SHARE, SUSPECTS_LIMIT, VOTE_K
from coverlens.search.clusters import DEFAULT_PCA_DIM
from coverlens.sources import cover_name


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    add_embedder_choice(parser)
    add_store_option(parser)
    add_workspace_option(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("similar", help="the stored covers nearest to an image")
    p.add_argument("image", type=Path)
    p.add_argument("-k", type=positive_int, default=SEARCH_K, help=f"how many covers (default {SEARCH_K})")
    p.add_argument("--offset", type=non_negative_int, default=0, help="skip this many first (next page: --offset K)")
    p.add_argument("--json", action="store_true", help="a JSON list instead of score<TAB>path lines")
    add_embedder_options(p)
    _add_store_options(p)
    p.set_defaults(handler=cmd_similar)

    p = subparsers.add_parser("clusters", help="HDBSCAN clusters of the stored covers, with their genre mix")
    p.add_argument("--min-cluster-size", type=int_at_least(2), default=None,
                   help="default: 1%% of the covers, at least 5")
    p.add_argument("--min-samples", type=positive_int, default=None, help="default: min(min-cluster-size, 10)")
    p.add_argument("--pca-dim", type=positive_int, default=DEFAULT_PCA_DIM, help="reduce to this many dimensions "
                   f"first (default {DEFAULT_PCA_DIM}; HDBSCAN's cost grows fast with it)")
    p.add_argument("--projection", choices=("pca", "tsne"), default="pca",
                   help="layout of the 2-D map (tsne: sharper, about a minute)")
    add_allow_incomplete(p, "clusters")
    _add_store_options(p)
    p.set_defaults(handler=cmd_clusters)

    p = subparsers.add_parser("suspects", help="covers that look mislabelled, and near-duplicate covers")
    p.add_argument("-k", "--k", type=positive_int, default=VOTE_K, help=f"neighbours that vote (default {VOTE_K})")
    p.add_argument("--min-share", type=share, default=SUSPECT_MIN_SHARE,
                   help=f"vote share for another genre (default {SUSPECT_MIN_SHARE})")
    p.add_argument("--threshold", type=similarity, default=DUPLICATE_THRESHOLD,
                   help=f"near-duplicate similarity (default {DUPLICATE_THRESHOLD})")
    p.add_argument("--limit", type=non_negative_int, default=SUSPECTS_LIMIT,
                   help=f"rows of each list printed (default {SUSPECTS_LIMIT}; the reports hold all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_store_options(p)
    p.set_defaults(handler=cmd_suspects)


def cmd_similar(args: argparse.Namespace) -> int:
    from coverlens.search.similar import hits_as_dicts

    service = open_service(args)
    try:
        found = service.similar(args.image, k=args.k, offset=args.offset, embedder=args.embedder)
        warnings = service.store_warnings(args.embedder)
    finally:
        service.close()
    warn(warnings)
    if args.json:
        rows = hits_as_dicts([f.hit for f in found], [cover_name(f.path, f.hit.source) for f in found])
        print(json.dumps([{**row, "warnings": warnings} for row in rows] if warnings else rows, indent=2))
        return 0
    for cover in found:
        print(f"{cover.hit.similarity:.4f}\t{cover_name(cover.path, cover.hit.source)}")
    return 0


def cmd_clusters(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        job = service.run_clusters(args.embedder, min_cluster_size=args.min_cluster_size,
                                   min_samples=args.min_samples, pca_dim=args.pca_dim, projection=args.projection,
                                   allow_incomplete=args.allow_incomplete)
    finally:
        service.close()
    warn(job.warnings)
    report = job.report
    print_table([{"cluster": c.cluster_id, "size": c.size, "dominant genre": c.dominant_genre,
                  "purity": f"{c.purity:.0%}", "top genres": c.top_genres()} for c in report.clusters])
    print()
    p = report.params
    print(f"{len(report.clusters)} clusters over {report.n_covers:,} covers | noise {report.noise_share:.1%} | "
          f"ARI {report.ari:.3f} | NMI {report.nmi:.3f} (vs genres; noise counted as one label) | "
          f"{report.seconds:.1f}s (pca {p['pca_dim']}, min_cluster_size {p['min_cluster_size']}, "
          f"min_samples {p['min_samples']})")
    if not report.clusters or report.noise_share > 0.5:
        print("most covers are noise: try a smaller --min-samples or --min-cluster-size, or a lower --pca-dim")
    print(f"map: {job.map_png}")
    print(f"report: {job.report_json}")
    print(f"labels: {job.labels_csv}")
    return 0


def cmd_suspects(args: argparse.Namespace) -> int:
    from coverlens.search.suspects_report import suspects_json

    service = open_service(args)
    try:
        found = service.suspects(args.embedder, k=args.k, min_share=args.min_share, threshold=args.threshold)
        show = service.cover_path if service.library_root() else Path
    finally:
        service.close()
    suspects, pairs = found.label_suspects, found.near_duplicates
    warn(found.warnings)
    if args.json:
        data = suspects_json(suspects[: args.limit], pairs[: args.limit], found.params)
        print(json.dumps({**data, "warnings": found.warnings}, indent=2))
        return 0
    print(f"{len(suspects):,} covers whose {args.k} nearest covers vote >= {args.min_share:.0%} for another genre:")
    print_table([{"share": f"{s.vote_share:.0%}", "filed as": s.genre, "neighbours say": s.voted_genre,
                  "path": cover_name(show(s.path), s.source)} for s in suspects[: args.limit]])
    print()
    print(f"{len(pairs):,} near-duplicate pairs (similarity >= {args.threshold}):")
    print_table([{"similarity": f"{p.similarity:.4f}", "a": cover_name(show(p.a_path), p.a_source),
                  "genre a": p.a_genre, "b": cover_name(show(p.b_path), p.b_source), "genre b": p.b_genre}
                 for p in pairs[: args.limit]])
    print()
    print(f"report: {found.markdown}")
    print(f"json: {found.json}")
    return 0
