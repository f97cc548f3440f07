"""The `coverlens clusters` options, made from ClusterParams so help and library share one default."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from coverlens.cli.common import (
    int_at_least,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    share,
)
from coverlens.clustering.chart import PROJECTIONS
from coverlens.clustering.params import MIN_SAMPLES, SPACES, ClusterParams
from coverlens.defaults import UMAP_NEIGHBORS

if TYPE_CHECKING:
    from coverlens.clustering.jobs import ClusterJob

D = ClusterParams()


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    from coverlens.clustering.registry import clusterer_names, reducer_names

    p.add_argument("--space", choices=SPACES, default=D.space,
                   help=f"what to cluster: image vectors, OCR text, both joined, with or without each cover's "
                   f"genre probabilities predicted out of fold (default {D.space}: image+text+genre when half "
                   "the covers have text, else image+genre; without +genre where too few covers have a genre)")
    p.add_argument("--reducer", choices=reducer_names(), default=D.reducer, help=f"default {D.reducer}")
    p.add_argument("--clusterer", choices=clusterer_names(), default=D.clusterer, help=f"default {D.clusterer}")
    p.add_argument("--n-components", type=positive_int, default=None,
                   help="dimensions after reduction (umap 5, pca 16)")
    p.add_argument("--n-neighbors", type=int_at_least(2), default=None,
                   help=f"UMAP (default {UMAP_NEIGHBORS}, at most the covers less one)")
    p.add_argument("--pca-dim", dest="pre_pca", type=positive_int, default=D.pre_pca,
                   help=f"image vectors through PCA to this first (default {D.pre_pca}; narrower vectors are "
                   "used as they are)")
    p.add_argument("--min-cluster-size", type=int_at_least(2), default=None, help="default: max(10, covers / 200)")
    p.add_argument("--min-samples", type=positive_int, default=None,
                   help=f"default: min(min-cluster-size, {MIN_SAMPLES})")
    p.add_argument("--max-clusters", type=non_negative_int, default=D.max_clusters,
                   help=f"merge the smallest clusters into their nearest above this (default {D.max_clusters}; "
                   "0: never)")
    p.add_argument("--max-cluster-share", type=share, default=D.max_cluster_share,
                   help=f"split any cluster over this share of the covers (default {D.max_cluster_share}; 0: never)")
    p.add_argument("--selection-epsilon", type=non_negative_float, default=None,
                   help="HDBSCAN keeps clusters closer than this whole (default after umap: 1.4 times the median "
                   "distance to the min-samples-th neighbour; 0 after pca)")
    p.add_argument("--reduce-outliers", action="store_true",
                   help="assign noise covers close to a cluster (marked 'outlier-reduction' in the labels file)")
    p.add_argument("--outlier-reach", type=positive_float, default=D.outlier_reach,
                   help=f"close = within this times the cluster's radius (default {D.outlier_reach})")
    p.add_argument("--text-weight", type=non_negative_float, default=D.text_weight,
                   help=f"image+text: weight of the text part (default {D.text_weight})")
    p.add_argument("--genre-weight", type=non_negative_float, default=D.genre_weight,
                   help=f"+genre spaces: weight of the genre probabilities (default {D.genre_weight}; 0: none)")
    p.add_argument("--seed", type=int_at_least(-1), default=D.seed,
                   help=f"default {D.seed}; -1: faster, not reproducible")
    p.add_argument("--projection", choices=PROJECTIONS, default=None,
                   help="layout of the 2-D map (default: umap after the umap reducer, else pca)")


def params_from_args(args: argparse.Namespace) -> ClusterParams:
    """The settings given on the command line; 0 means "never" for the two caps, -1 "no seed"."""
    return ClusterParams(
        space=args.space, reducer=args.reducer, clusterer=args.clusterer, n_components=args.n_components,
        n_neighbors=args.n_neighbors, pre_pca=args.pre_pca, min_cluster_size=args.min_cluster_size,
        min_samples=args.min_samples, max_clusters=args.max_clusters or None,
        max_cluster_share=args.max_cluster_share or None, selection_epsilon=args.selection_epsilon,
        reduce_outliers=args.reduce_outliers, outlier_reach=args.outlier_reach, text_weight=args.text_weight,
        genre_weight=args.genre_weight, seed=None if args.seed < 0 else args.seed)


def job_lines(job: ClusterJob) -> tuple[list[dict[str, Any]], list[str]]:
    """Table rows and summary lines for a finished job (the CLI prints them)."""
    r = job.report
    p = r.params
    rows = [{"cluster": c.cluster_id, "size": c.size, "words": ", ".join(c.words[:4]),
             "dominant genre": c.dominant_genre, "purity": f"{c.purity:.0%}", "top genres": c.top_genres(),
             "reassigned": c.reassigned} for c in r.clusters]
    lines = [
        f"{len(r.clusters)} clusters over {r.n_covers:,} covers ({r.found_clusters} found, merged to at most "
        f"{p['max_clusters']}), {r.space} space | noise {r.noise_share_before:.1%}"
        + (f", {r.noise_share:.1%} after assigning {r.reassigned:,} outliers" if p["reduce_outliers"] else "")
        + f" | ARI {r.ari:.3f} | NMI {r.nmi:.3f} (vs genres; noise counted as one label)",
        f"{r.seconds:.1f}s clustering ({', '.join(f'{k} {v:.1f}s' for k, v in r.timings.items())}); "
        f"umap compile {r.compile_seconds:.1f}s; map {job.map_seconds:.1f}s | {p['reducer']} {p['n_components']}-d, "
        f"min_cluster_size {p['min_cluster_size']}, min_samples {p['min_samples']}, seed {p['seed']}",
    ]
    if r.no_signal:
        lines.append(f"{r.no_signal:,} covers have no text and were left out (noise, marked no-signal)")
    if not r.clusters or r.noise_share > 0.5:
        lines.append("most covers are noise: try a smaller --min-samples or --min-cluster-size, or --reduce-outliers")
    lines += [f"map: {job.map_png}", f"report: {job.report_json}", f"labels: {job.labels_csv}"]
    return rows, lines
