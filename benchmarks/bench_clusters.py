"""HDBSCAN clustering at library scale: time, noise share, ARI and NMI for a few settings.

Target (issue: cover index, part 5): clustering 32k stored vectors in under 60 s.

Input: `--vectors FILE.npy` (n x d float) with `--labels FILE.csv` (one genre per row, in the same
order; a `genre` column if the file has a header, else the first column), e.g. vectors dumped from
the store. Without them it uses SYNTHETIC vectors (32k x 1280 by default): 33 "genres", each a
mixture of 3 sub-styles, with 10% of the labels shuffled and 5% background points. Synthetic
figures say how fast the code is, not how well real covers cluster.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line  # noqa: E402
from coverlens.search.clusters import (  # noqa: E402
    DEFAULT_PCA_DIM,
    cluster_vectors,
    default_min_cluster_size,
    place_covers,
)

TARGET_S = 60.0


def synthetic(n: int, dim: int, genres: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Genre blobs on the unit sphere, each of 3 sub-styles, with label noise and background points."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(genres, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    styles = centres[:, None, :] + 0.6 * rng.normal(size=(genres, 3, dim)) / np.sqrt(dim)
    genre = rng.integers(0, genres, size=n)
    style = rng.integers(0, 3, size=n)
    vectors = styles[genre, style] + rng.normal(scale=1.2 / np.sqrt(dim), size=(n, dim))
    background = rng.random(n) < 0.05
    vectors[background] = rng.normal(size=(int(background.sum()), dim))
    shuffled = rng.random(n) < 0.10
    genre[shuffled] = rng.integers(0, genres, size=int(shuffled.sum()))
    return vectors.astype(np.float32), [f"genre{g:02d}" for g in genre]


def read_labels(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if rows and "genre" in rows[0]:
        column = rows[0].index("genre")
        return [r[column] for r in rows[1:]]
    return [r[0] for r in rows]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (hdbscan's joblib workers): unlike wall
    time, it does not grow when other jobs share the cores."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def settings(n: int) -> list[tuple[int, int | None, int | None]]:
    """(pca_dim, min_cluster_size, min_samples): our defaults, hdbscan's min_samples, then PCA and size."""
    default = default_min_cluster_size(n)
    return [(DEFAULT_PCA_DIM, None, None), (8, None, None), (32, None, None),
            (DEFAULT_PCA_DIM, default, default), (DEFAULT_PCA_DIM, max(5, default // 3), None)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=Path, help="n x d .npy file of stored vectors")
    parser.add_argument("--labels", type=Path, help="CSV of genres, one per vector, same order")
    parser.add_argument("-n", type=int, default=32_000, help="synthetic: number of vectors")
    parser.add_argument("--dim", type=int, default=1280, help="synthetic: dimension")
    parser.add_argument("--genres", type=int, default=33, help="synthetic: number of genres")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="only the default setting")
    args = parser.parse_args()

    if args.vectors:
        if not args.labels:
            parser.error("--vectors needs --labels")
        vectors = np.load(args.vectors).astype(np.float32)
        genres = read_labels(args.labels)
        if len(genres) != len(vectors):
            parser.error(f"{len(vectors)} vectors but {len(genres)} labels")
        source = f"REAL vectors {args.vectors} ({len(vectors):,} x {vectors.shape[1]}), labels {args.labels}"
    else:
        started = time.perf_counter()
        vectors, genres = synthetic(args.n, args.dim, args.genres, args.seed)
        source = (f"SYNTHETIC vectors ({args.n:,} x {args.dim}, {args.genres} genres x 3 sub-styles, "
                  f"10% shuffled labels, 5% background; made in {time.perf_counter() - started:.1f}s)")
    ids = [f"c{i}" for i in range(len(vectors))]
    print(f"== clusters benchmark: {source}")
    print(f"   {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (wall times grow with load)")
    results = []
    for pca_dim, mcs, min_samples in settings(len(vectors))[: 1 if args.quick else None]:
        cpu = cpu_seconds()
        report, model = cluster_vectors(vectors, genres, ids, ids, min_cluster_size=mcs,
                                        min_samples=min_samples, pca_dim=pca_dim, seed=args.seed)
        cpu = cpu_seconds() - cpu
        started = time.perf_counter()
        place_covers(model, vectors[:1000])
        place_ms = (time.perf_counter() - started) * 1000 / 1000
        p = report.params
        label = f"pca {p['pca_dim']}, min_cluster_size {p['min_cluster_size']}, min_samples {p['min_samples']}"
        verdict = "OK" if report.seconds < TARGET_S else "MISSED"
        line(label, f"{report.seconds:6.1f} s {verdict} (cpu {cpu:5.1f} s) | clusters {len(report.clusters):3d} | "
             f"noise {report.noise_share:.1%} | ARI {report.ari:.3f} | NMI {report.nmi:.3f} | "
             f"place {place_ms:.2f} ms/cover")
        results.append(report.seconds)
    line(f"fastest / slowest setting (target < {TARGET_S:.0f} s)", f"{min(results):.1f} s / {max(results):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
