"""Commands over the stored vectors: similar, clusters, suspects. Parse, call the service, format."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from coverlens.cli.common import (
    add_workspace_option,
    int_at_least,
    non_negative_int,
    positive_int,
    print_table,
    share,
    similarity,
    workspace_of,
)
from coverlens.embedders.factory import EMBEDDER_NAMES
from coverlens.search.clusters import DEFAULT_PCA_DIM

if TYPE_CHECKING:
    from coverlens.service import CoverlensService

EMBEDDERS = EMBEDDER_NAMES


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embedder", choices=EMBEDDERS, default="finetuned",
                        help="which stored vectors to use (default: finetuned)")
    parser.add_argument("--chroma-url", default=None,
                        help="Chroma server URL (default: the embedded store in the workspace)")
    add_workspace_option(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("similar", help="the stored covers nearest to an image")
    p.add_argument("image", type=Path)
    p.add_argument("-k", type=positive_int, default=10, help="how many covers (default 10)")
    p.add_argument("--offset", type=non_negative_int, default=0, help="skip this many first (next page: --offset K)")
    p.add_argument("--json", action="store_true", help="a JSON list instead of score<TAB>path lines")
    p.add_argument("--clip-model", default=None, help="with --embedder clip: open_clip model name "
                   "(default: the one the stored vectors were made with)")
    p.add_argument("--clip-pretrained", default=None, help="with --embedder clip: pretrained tag, weights "
                   "file or local-dir:FOLDER (default: the one the stored vectors were made with)")
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
    _add_store_options(p)
    p.set_defaults(handler=cmd_clusters)

    p = subparsers.add_parser("suspects", help="covers that look mislabelled, and near-duplicate covers")
    p.add_argument("-k", "--k", type=positive_int, default=10, help="neighbours that vote (default 10)")
    p.add_argument("--min-share", type=share, default=0.7, help="vote share for another genre (default 0.7)")
    p.add_argument("--threshold", type=similarity, default=0.97, help="near-duplicate similarity (default 0.97)")
    p.add_argument("--limit", type=non_negative_int, default=20,
                   help="rows of each list printed (the reports hold all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_store_options(p)
    p.set_defaults(handler=cmd_suspects)


def _service(args: argparse.Namespace) -> CoverlensService:
    from coverlens.service import CoverlensService

    return CoverlensService(workspace_of(args), chroma_url=args.chroma_url,
                            clip_model=getattr(args, "clip_model", None),
                            clip_pretrained=getattr(args, "clip_pretrained", None))


def cmd_similar(args: argparse.Namespace) -> int:
    from coverlens.search.similar import hits_as_dicts, similar_covers

    service = _service(args)
    try:
        image, query_id = service.read_query(args.image)
        service.stored_collection(args.embedder)  # "run coverlens index" before any model loads
        result = similar_covers(image, service.embedder(args.embedder), service.collection(args.embedder),
                                k=args.k, offset=args.offset, query_id=query_id)
        paths = [str(service.cover_path(hit.path)) for hit in result.hits]
    finally:
        service.close()
    if args.json:
        print(json.dumps(hits_as_dicts(result.hits, paths), indent=2))
        return 0
    for hit, path in zip(result.hits, paths, strict=True):
        print(f"{hit.similarity:.4f}\t{path}")
    return 0


def cmd_clusters(args: argparse.Namespace) -> int:
    from coverlens.search.jobs import cluster_stored

    service = _service(args)
    try:
        stored = service.stored_collection(args.embedder).fetch()
    finally:
        service.close()
    job = cluster_stored(service.workspace, stored, args.embedder, min_cluster_size=args.min_cluster_size,
                         min_samples=args.min_samples, pca_dim=args.pca_dim, projection=args.projection)
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

    service = _service(args)
    try:
        found = service.suspects(args.embedder, k=args.k, min_share=args.min_share, threshold=args.threshold)
        show = service.cover_path if service.library_root() else Path
    finally:
        service.close()
    suspects, pairs = found.label_suspects, found.near_duplicates
    if args.json:
        print(json.dumps(suspects_json(suspects[: args.limit], pairs[: args.limit], found.params), indent=2))
        return 0
    print(f"{len(suspects):,} covers whose {args.k} nearest covers vote >= {args.min_share:.0%} for another genre:")
    print_table([{"share": f"{s.vote_share:.0%}", "filed as": s.genre, "neighbours say": s.voted_genre,
                  "path": str(show(s.path))} for s in suspects[: args.limit]])
    print()
    print(f"{len(pairs):,} near-duplicate pairs (similarity >= {args.threshold}):")
    print_table([{"similarity": f"{p.similarity:.4f}", "a": str(show(p.a_path)), "genre a": p.a_genre,
                  "b": str(show(p.b_path)), "genre b": p.b_genre} for p in pairs[: args.limit]])
    print()
    print(f"report: {found.markdown}")
    print(f"json: {found.json}")
    return 0
