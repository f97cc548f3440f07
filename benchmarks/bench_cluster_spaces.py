"""Feature spaces for clustering, side by side: clusters, noise, NMI, ARI and time of each space with
every other default unchanged (UMAP -> HDBSCAN -> merge to <= 60), on one library per run.

Targets (issue: readable clusters): with defaults, 5-60 clusters, noise <= 40% before outlier
reduction, NMI >= 0.12 against the genres, on album-covers-5 AND book-covers-color5: the default
must not win on one set only, so run it on each and read all rows.

Vectors (as bench_clusters.py): `--workspace WS` (stored fine-tuned vectors and OCR text),
`--npz FILE` (a dump by dump_cluster_vectors.py: vectors, genres, ids, texts), `--library DIR`
(ImageNet vectors of a genre-folder set, no text: image spaces only), `--sample N` to cluster a
seeded random sample. The +genre spaces predict each cover's genre out of fold from the other
parts (coverlens.clustering.genre_part): NMI is also given over the test split alone when the
dump has splits, and the time of the genre part is in the `features` column.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line  # noqa: E402
from bench_clusters_data import Data, load_vectors  # noqa: E402
from coverlens.clustering.fit import cluster_vectors  # noqa: E402
from coverlens.clustering.params import ClusterParams  # noqa: E402
from coverlens.clustering.report import agreement  # noqa: E402
from coverlens.clustering.warm import warm_up  # noqa: E402

SPACES = "image,text,image+text,image+genre,image+text+genre"


def from_npz(path: Path) -> tuple[Data, np.ndarray | None]:
    d = np.load(path)
    ids = [str(i) for i in d["ids"]]
    texts = {i: str(t) for i, t in zip(ids, d["texts"], strict=True) if t} if "texts" in d else None
    split = d["split"] if "split" in d else None
    return (Data(d["vectors"].astype(np.float32), [str(g) for g in d["genres"]], ids, texts or None,
                 f"REAL vectors dumped in {path} ({len(ids):,} x {d['vectors'].shape[1]}); "
                 f"text on {len(texts or {}):,} covers"), split)


def sample(data: Data, split: np.ndarray | None, n: int, seed: int) -> tuple[Data, np.ndarray | None]:
    if not n or n >= len(data.ids):
        return data, split
    rows = np.sort(np.random.default_rng(seed).choice(len(data.ids), size=n, replace=False))
    ids = [data.ids[i] for i in rows]
    texts = {i: data.texts[i] for i in ids if i in data.texts} if data.texts else None
    return (Data(data.vectors[rows], [data.genres[i] for i in rows], ids, texts,
                 f"{data.source}; a seeded sample of {n:,}"), None if split is None else split[rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--embedder", default="finetuned")
    parser.add_argument("--library", type=Path)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--npz", type=Path, help="a dump by dump_cluster_vectors.py")
    parser.add_argument("--spaces", default=SPACES, help=f"comma-separated (default {SPACES})")
    parser.add_argument("--sample", type=int, default=0, help="cluster a seeded random sample of this many")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--genre-weight", type=float, default=None, help="+genre spaces (default: the library's)")
    args = parser.parse_args()
    args.vectors = args.labels = None
    args.n = 0
    if args.npz:
        data, split = from_npz(args.npz)
    else:
        data, split = load_vectors(args, parser), None
    data, split = sample(data, split, args.sample, args.seed)
    print(f"== cluster feature spaces: {data.source}")
    started = time.perf_counter()
    warm_up(large=len(data.ids) >= 10_000)
    line("first-call compile (umap import + numba JIT)", f"{time.perf_counter() - started:.1f} s")
    test = None if split is None else split == "test"
    for space in args.spaces.split(","):
        params = ClusterParams(seed=args.seed).with_settings(space=space, genre_weight=args.genre_weight)
        try:
            result = cluster_vectors(data.vectors, data.genres, data.ids, data.ids, texts=data.texts, params=params)
        except Exception as exc:  # noqa: BLE001 - a benchmark says what it could not run and goes on
            line(space, f"not run: {exc}")
            continue
        r = result.report
        ok = 5 <= len(r.clusters) <= 60 and r.noise_share_before <= 0.40 and r.nmi >= 0.12
        held = ""
        if test is not None and test.any():
            held = f" | NMI test split {agreement(result.model.labels[test], np.array(data.genres)[test])['nmi']:.3f}"
        line(f"{space} (built: {r.space})",
             f"clusters {len(r.clusters):3d} (found {r.found_clusters}) | noise {r.noise_share_before:.1%} | "
             f"NMI {r.nmi:.3f}{held} | ARI {r.ari:.3f} | {'meets' if ok else 'misses'} 5-60/40%/0.12 | "
             f"{r.seconds:.0f} s ({' '.join(f'{k} {v:.1f}' for k, v in r.timings.items())}) | "
             f"epsilon {r.params['selection_epsilon']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
