"""Compact vectors: full vectors vs PCA and PCA-whitening to 512/256/128 dimensions, side by side.

For each variant, in one run over the same vectors:
- KNN vote top-1 on the test split (similarity-weighted, k=10 train neighbours: the app's vote);
- near-duplicate recall: a JPEG re-encode (quality 60) and a 90% centre crop of sampled covers,
  made here, embedded, projected; found at rank 1 (exact search over the whole library);
- Chroma recall@10 of the test covers against exact search (an embedded store made here, with the
  project's HNSW settings and the covers' metadata);
- bytes per cover of that store on disk, and the query p50/p95 (one cover per query, k=10).

The projection is fitted on the train split's vectors only (as `coverlens` does).

Datasets:
- album-covers-5: the fine-tuned 2,560-d vectors already stored in a measured workspace (default
  /work/measure/album-covers-5; its store is copied, never written), and its model for the copies;
- book-covers-gray33 (`--gray33 N`): no fine-tuned model exists for it, so ImageNet mobilenet_v2
  features (the registry's imagenet embedder, 2,560-d) of a seeded sample of N covers, split 80/20.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dataset, line  # noqa: E402
from coverlens.defaults import VOTE_K  # noqa: E402
from coverlens.embedders.projection import KINDS, Projection, fit_projection  # noqa: E402
from coverlens.search.vote import knn_scores  # noqa: E402
from coverlens.store.store import HNSW_CONFIGURATION  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}


@dataclass
class Library:
    name: str
    ids: list[str]
    vectors: np.ndarray  # (n, d) L2-normalised
    genres: list[str]
    splits: list[str]
    metadatas: list[dict]
    copies: np.ndarray  # (m, d) vectors of the near-duplicate copies
    originals: list[int]  # row of each copy's original in `vectors`
    note: str = ""


def copies_of(images: list, seed: int = 0) -> tuple[list, list[int]]:
    """JPEG q=60 re-encodes and 90% centre crops of the given images, and which image each copies."""
    from PIL import Image

    out, originals = [], []
    for n, image in enumerate(images):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=60)
        out.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        w, h = image.size
        dx, dy = round(w * 0.05), round(h * 0.05)
        out.append(image.crop((dx, dy, w - dx, h - dy)))
        originals += [n, n]
    return out, originals


def album_library(workspace_dir: Path, tmp: Path, n_copies: int) -> Library:
    from coverlens.catalog import library_root
    from coverlens.classifier import load_classifier
    from coverlens.embedders.backbone import FinetunedBackboneEmbedder
    from coverlens.images import open_image
    from coverlens.store import CoverStore
    from coverlens.workspace import Workspace

    copy = tmp / "album-workspace"  # the measured workspace is read only: work on a copy of it
    shutil.copytree(workspace_dir, copy, ignore=shutil.ignore_patterns("cache", "text", "*.lock"))
    workspace = Workspace(copy)
    with CoverStore.open(workspace) as store:
        info = next(i for i in store.list_collections() if i.embedder == "finetuned" and i.count)
        stored = store.collection_for(info.embedder, info.identity).fetch()
    embedder = FinetunedBackboneEmbedder(load_classifier(workspace))
    rng = random.Random(0)
    rows = sorted(rng.sample(range(len(stored.ids)), min(n_copies, len(stored.ids))))
    root = library_root(workspace)
    made, originals = copies_of([open_image(root / stored.metadatas[r]["path"]) for r in rows])
    return Library("album-covers-5", stored.ids, stored.vectors, [m["genre"] for m in stored.metadatas],
                   [m["split"] for m in stored.metadatas], stored.metadatas, embedder.embed(made),
                   [rows[o] for o in originals], note="fine-tuned mobilenet_v2, stored vectors")


def gray33_library(folder: Path, sample: int, n_copies: int) -> Library:
    from concurrent.futures import ThreadPoolExecutor

    from coverlens.embedders.backbone import ImagenetBackboneEmbedder
    from coverlens.images import open_image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    rng = random.Random(0)
    chosen = sorted(rng.sample(files, min(sample, len(files))))
    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(lambda p: open_image(p).copy(), chosen))
    embedder = ImagenetBackboneEmbedder(pretrained=True)
    vectors = np.concatenate([embedder.embed(images[i:i + 64]) for i in range(0, len(images), 64)])
    genres = [p.relative_to(folder).parts[0] for p in chosen]
    splits = ["test" if rng.random() < 0.2 else "train" for _ in chosen]
    rows = sorted(rng.sample(range(len(chosen)), min(n_copies, len(chosen))))
    made, originals = copies_of([images[r] for r in rows])
    metadatas = [{"path": str(p.relative_to(folder)), "genre": g, "split": s}
                 for p, g, s in zip(chosen, genres, splits, strict=True)]
    return Library("book-covers-gray33", [str(p) for p in chosen], vectors, genres, splits, metadatas,
                   embedder.embed(made), [rows[o] for o in originals],
                   note=f"ImageNet mobilenet_v2 features (no fine-tuned model), sample of {len(chosen):,} covers")


def knn_top1(vectors: np.ndarray, library: Library) -> float:
    classes = sorted(set(library.genres))
    labels = np.array([classes.index(g) for g in library.genres])
    train = np.array([s == "train" for s in library.splits])
    test = np.array([s == "test" for s in library.splits])
    scores = knn_scores(vectors[test] @ vectors[train].T, labels[train], len(classes), k=VOTE_K)
    return float((scores.argmax(axis=1) == labels[test]).mean())


def near_dup_recall(vectors: np.ndarray, copies: np.ndarray, originals: list[int]) -> float:
    return float(((copies @ vectors.T).argmax(axis=1) == np.array(originals)).mean())


def chroma_figures(vectors: np.ndarray, library: Library, folder: Path, queries: int) -> dict[str, float]:
    """Recall@10 against exact search, bytes per cover on disk, query p50/p95 (ms)."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("covers", configuration={"hnsw": dict(HNSW_CONFIGURATION)},
                                          embedding_function=None)
    batch = client.get_max_batch_size()
    for start in range(0, len(vectors), batch):
        part = slice(start, start + batch)
        collection.add(ids=library.ids[part], embeddings=vectors[part], metadatas=library.metadatas[part])
    test = [n for n, s in enumerate(library.splits) if s == "test"][:queries]
    exact = np.argsort(-(vectors[test] @ vectors.T), axis=1)[:, :10]
    times, found = [], 0
    for row, truth in zip(test, exact, strict=True):
        started = time.perf_counter()
        answer = collection.query(query_embeddings=vectors[row:row + 1], n_results=10, include=[])
        times.append((time.perf_counter() - started) * 1000)
        found += len(set(answer["ids"][0]) & {library.ids[t] for t in truth})
    del collection, client
    SharedSystemClient.clear_system_cache()  # closes the store: what it holds is on disk now
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    times.sort()
    return {"recall": found / (10 * len(test)), "bytes": size / len(vectors),
            "p50": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))]}


def variants(dims: list[int]) -> list[tuple[str, str | None, int]]:
    out: list[tuple[str, str | None, int]] = [("full", None, 0)]
    for d in dims:
        out += [(f"pca-{d}", "pca", d), (f"whiten-{d}", "whiten", d)]
    return out


def truncated(projection: Projection, dim: int) -> Projection:
    return Projection(projection.kind, projection.mean, projection.components[:dim], projection.scale[:dim],
                      projection.fitted_on)


def measure(library: Library, dims: list[int], tmp: Path, queries: int) -> None:
    train = np.array([s == "train" for s in library.splits])
    print(f"\n== {library.name}: {len(library.ids):,} covers ({int(train.sum()):,} train, "
          f"{sum(s == 'test' for s in library.splits):,} test), {library.vectors.shape[1]}-d; {library.note}; "
          f"{len(library.copies)} near-duplicate copies of {len(library.copies) // 2} covers")
    print(f"{'variant':<12} {'dim':>5} {'KNN top-1':>10} {'near-dup@1':>11} {'recall@10':>10} "
          f"{'bytes/cover':>12} {'p50 ms':>7} {'p95 ms':>7}")
    fitted = {kind: fit_projection(library.vectors[train], max(dims), kind) for kind in KINDS}
    for name, kind, dim in variants(dims):
        if kind is None:
            vectors, copies = library.vectors, library.copies
        else:  # the first `dim` components of one exact SVD: the same as fitting `dim` of them
            projection = truncated(fitted[kind], dim)
            vectors, copies = projection.apply(library.vectors), projection.apply(library.copies)
        chroma = chroma_figures(vectors, library, tmp / f"{library.name}-{name}", queries)
        print(f"{name:<12} {vectors.shape[1]:>5} {knn_top1(vectors, library):>10.4f} "
              f"{near_dup_recall(vectors, copies, library.originals):>11.4f} {chroma['recall']:>10.4f} "
              f"{chroma['bytes']:>12,.0f} {chroma['p50']:>7.2f} {chroma['p95']:>7.2f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--album-workspace", type=Path, default=Path("/work/measure/album-covers-5"))
    parser.add_argument("--gray33", type=int, default=0, metavar="N",
                        help="also measure book-covers-gray33 on a sample of N covers (ImageNet features)")
    parser.add_argument("--gray33-dir", type=Path, default=None, help="default: ../shared/datasets/book-covers-gray33")
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 256, 128])
    parser.add_argument("--copies", type=int, default=200, help="covers to make near-duplicate copies of")
    parser.add_argument("--queries", type=int, default=300, help="test covers queried in Chroma")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-compact-") as tmp:
        if args.album_workspace.is_dir():
            measure(album_library(args.album_workspace, Path(tmp), args.copies), args.dims, Path(tmp), args.queries)
        else:
            print(f"[skip] no workspace at {args.album_workspace}", file=sys.stderr)
        if args.gray33:
            folder = args.gray33_dir or dataset("book-covers-gray33")
            if folder is not None:
                library = gray33_library(folder, args.gray33, args.copies)
                measure(library, args.dims, Path(tmp), args.queries)
    line("\nwall time", f"{time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
