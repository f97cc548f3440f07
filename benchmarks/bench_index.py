"""Indexing throughput and Chroma search quality, measured in one run.

Figures (issue: cover index, parts 1-2):
- indexing throughput, end to end (catalog -> read -> embed -> write), in covers/s, against the
  bare backbone forward on tensors already in memory: ratio target >= 0.8 (the model is not starved);
- Chroma top-10 against exact brute-force top-10 over the same stored vectors: recall target >= 0.99;
- query latency p50/p95 (unfiltered, and filtered to split=train as the KNN vote asks).

The embedder is the ImageNet mobilenet_v2 backbone: `coverlens.embedders.backbone.
ImagenetBackboneEmbedder` (224 px, concat-pooled 2560-d), its bare forward timed on tensors made by
its own preprocessing; `--split-preprocess` runs that preprocessing in the indexer's reader thread
(the optional `prepare`/`embed_prepared` split). Where that class is missing, a local wrapper of
torchvision's mobilenet_v2 (its own eval transform, average-pooled 1280-d) stands in. Both need the
offline ImageNet checkpoint (`coverlens weights`).

Input: a GENERATED library by default (figures say how fast the code is, not how real covers
behave); `--library PATH [--manifest CSV]` for a real one, e.g. ../shared/datasets/book-covers-gray33,
with `--limit N` to index a random N files of it (on a slow CPU a full 23k-cover run takes hours).
`--vectors FILE.npy` measures only the Chroma part (recall, latency, insert rate) on vectors embedded
before (e.g. all distinct gray33 covers), without embedding anything.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coverlens.catalog import distinct_covers, library_root, load_catalog, run_catalog
from coverlens.embedders import l2_normalise, torch_threads
from coverlens.images import open_image
from coverlens.indexer import index_covers
from coverlens.sample_library import make_sample_library
from coverlens.store import CoverCollection, CoverStore
from coverlens.store.store import HNSW_CONFIGURATION
from coverlens.workspace import Workspace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
THROUGHPUT_TARGET, RECALL_TARGET = 0.8, 0.99


class MobilenetFeatures:
    """Stand-in when coverlens has no ImagenetBackboneEmbedder: torchvision mobilenet_v2 features."""

    name = "bench-mobilenet_v2"
    dimension = 1280

    def __init__(self) -> None:
        import torch
        from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

        from coverlens.weights import ensure_mobilenet_v2_weights

        ensure_mobilenet_v2_weights()
        torch.set_num_threads(torch_threads())
        weights = MobileNet_V2_Weights.IMAGENET1K_V1
        self.features = mobilenet_v2(weights=weights).features.eval()
        self.transform = weights.transforms()  # the eval preprocessing that belongs to these weights

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "benchmark", "arch": "mobilenet_v2", "weights": "IMAGENET1K_V1", "pool": "avg"}

    def prepare(self, images: Sequence[Any]) -> Any:
        import torch

        return torch.stack([self.transform(image) for image in images])

    def embed_prepared(self, batch: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            pooled = torch.nn.functional.adaptive_avg_pool2d(self.features(batch), 1).flatten(1)
        return l2_normalise(pooled.numpy())

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        return self.embed_prepared(self.prepare(images))


class Timed:
    """The embedder the indexer runs, and the two halves of it that the bare timing needs."""

    def __init__(self, embedder: Any, to_input: Callable[[Sequence[Any]], Any],
                 forward: Callable[[Any], np.ndarray], description: str) -> None:
        self.embedder, self.to_input, self.forward, self.description = embedder, to_input, forward, description


def load_backbone(split_preprocess: bool) -> Timed:
    try:
        from coverlens.embedders.backbone import ImagenetBackboneEmbedder
        from coverlens.preprocess import images_to_input
    except ImportError as exc:
        local = MobilenetFeatures()
        return Timed(local, local.prepare, local.embed_prepared,
                     f"local torchvision mobilenet_v2 wrapper (coverlens backbone not importable: {exc})")
    def to_input(embedder: Any, images: Sequence[Any]) -> Any:
        return images_to_input(images, embedder.image_size, embedder.mean, embedder.std, "cpu")

    def forward(embedder: Any, batch: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return l2_normalise(embedder.net(batch.to(embedder.device)).float().cpu().numpy())

    class Split(ImagenetBackboneEmbedder):
        """The same embedder with its preprocessing split off, so the reader thread runs it."""

        def prepare(self, images: Sequence[Any]) -> Any:
            return to_input(self, images)

        def embed_prepared(self, batch: Any) -> np.ndarray:
            return forward(self, batch)

    embedder = Split() if split_preprocess else ImagenetBackboneEmbedder()
    how = "preprocessing in the reader thread" if split_preprocess else "preprocessing inside embed()"
    return Timed(embedder, lambda images: to_input(embedder, images), lambda batch: forward(embedder, batch),
                 f"coverlens ImagenetBackboneEmbedder (mobilenet_v2, {embedder.image_size} px, {how})")


def prepare_workspace(args: argparse.Namespace) -> tuple[Workspace, str]:
    if args.library is None:
        root = Path(tempfile.mkdtemp(prefix="bench-index-"))
        per_genre = max(1, args.generated // 4)
        make_sample_library(root / "lib", genres=4, per_genre=per_genre, size=128, seed=0)
        workspace = Workspace(args.workspace or root / "ws")
        run_catalog(workspace, root / "lib")
        return workspace, f"GENERATED library of {4 * per_genre} covers at 128 px (not real covers)"
    if not args.library.exists():
        sys.exit(f"library {args.library} is missing (../shared/datasets is absent on this machine?); "
                 "run without --library for a generated one")
    workspace = Workspace(args.workspace or Path(tempfile.mkdtemp(prefix="bench-index-ws-")))
    manifest = args.manifest
    if args.limit:
        manifest = limited_manifest(args.library, args.manifest, args.limit, args.seed, workspace.root)
    started = time.perf_counter()
    summary = run_catalog(workspace, args.library, manifest=manifest)
    print(f"catalog: {summary.files:,} files, {summary.distinct:,} distinct, read {summary.read:,} "
          f"in {time.perf_counter() - started:.1f}s -> {workspace.root}")
    limited = f", a random {args.limit:,} of its files" if args.limit else ""
    given = f" (manifest {args.manifest})" if args.manifest else ""
    return workspace, f"REAL library {args.library}{limited}{given}"


def limited_manifest(library: Path, manifest: Path | None, limit: int, seed: int, folder: Path) -> Path:
    """A manifest of `limit` random files of the library (path,genre relative to the library)."""
    if manifest is not None:
        with open(manifest, newline="", encoding="utf-8") as handle:
            rows = [(r["path"], r["genre"]) for r in csv.DictReader(handle)]
    else:
        rows = [(p.relative_to(library).as_posix(), p.parent.name) for p in sorted(library.glob("*/*"))
                if p.is_file()]
    rows = random.Random(seed).sample(rows, min(limit, len(rows)))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"bench-manifest-{limit}.csv"
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "genre"])
        writer.writerows(rows)
    return target


def bare_forward_rate(backbone: Timed, paths: list[Path], batch_size: int) -> tuple[float, float]:
    """(covers/s of the forward on tensors already in memory, covers/s of embed() on decoded images)."""
    images = [open_image(p) for p in paths]
    batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
    tensors = [backbone.to_input(b) for b in batches]
    backbone.forward(tensors[0])  # warm-up
    started = time.perf_counter()
    for batch in tensors:
        backbone.forward(batch)
    bare = len(images) / (time.perf_counter() - started)
    started = time.perf_counter()
    for batch in batches:
        backbone.embedder.embed(batch)
    return bare, len(images) / (time.perf_counter() - started)


def search_quality(collection: Any, queries: int, seed: int) -> dict[str, float]:
    stored = collection.fetch()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(stored.ids), size=min(queries, len(stored.ids)), replace=False)
    exact = stored.vectors[picks] @ stored.vectors.T
    k = min(10, len(stored.ids))
    strict = tolerant = 0.0
    latencies, filtered = [], []
    position = {cover_id: n for n, cover_id in enumerate(stored.ids)}
    for row, pick in enumerate(picks):
        top = set(np.argsort(-exact[row])[:k])
        kth = np.sort(exact[row])[-k]
        started = time.perf_counter()
        [hits] = collection.query(stored.vectors[pick], k)
        latencies.append(time.perf_counter() - started)
        got = [position[h.id] for h in hits]
        strict += len(top & set(got)) / k
        tolerant += sum(exact[row, g] >= kth - 1e-6 for g in got) / k  # ties at the 10th place count
        started = time.perf_counter()
        collection.query(stored.vectors[pick], k, where={"split": "train"})
        filtered.append(time.perf_counter() - started)
    ms = 1000 * np.asarray(latencies)
    fms = 1000 * np.asarray(filtered)
    return {"recall": tolerant / len(picks), "strict_recall": strict / len(picks), "queries": len(picks),
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "filtered_p50": float(np.percentile(fms, 50)), "filtered_p95": float(np.percentile(fms, 95))}


def chroma_defaults_quality(store: CoverStore, collection: CoverCollection, queries: int,
                            seed: int) -> dict[str, float]:
    """The same vectors in a collection with Chroma's default HNSW settings, for comparison."""
    name = "bench-index-chroma-defaults"
    client = store.client
    if name in [c.name for c in client.list_collections()]:
        client.delete_collection(name)
    raw = client.create_collection(name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    try:
        copy = CoverCollection(raw, "bench", {}, client.get_max_batch_size())
        stored = collection.fetch()
        copy.upsert(stored.ids, stored.vectors, stored.metadatas)
        return search_quality(copy, queries, seed)
    finally:
        client.delete_collection(name)


def print_quality(quality: dict[str, float], defaults: dict[str, float]) -> None:
    verdict = "meets" if quality["recall"] >= RECALL_TARGET else "BELOW"
    print(f"Chroma top-10 recall vs exact: {quality['recall']:.4f} ({verdict} target {RECALL_TARGET}; "
          f"strict, ties not credited: {quality['strict_recall']:.4f}; {quality['queries']} queries)")
    print(f"query latency k=10: p50 {quality['p50']:.1f} ms, p95 {quality['p95']:.1f} ms; "
          f"filtered split=train: p50 {quality['filtered_p50']:.1f} ms, p95 {quality['filtered_p95']:.1f} ms")
    print(f"  (HNSW settings of the store: {HNSW_CONFIGURATION}; with Chroma's defaults the same vectors give "
          f"recall {defaults['recall']:.4f}, strict {defaults['strict_recall']:.4f}, "
          f"p50 {defaults['p50']:.1f} ms, p95 {defaults['p95']:.1f} ms)")


def vectors_only(path: Path, queries: int, seed: int) -> int:
    """Chroma recall and latency on vectors embedded before: no embedding, any scale."""
    if not path.is_file():
        sys.exit(f"{path} is missing")
    vectors = l2_normalise(np.load(path))
    rng = np.random.default_rng(seed)
    ids = [f"v{n:07d}" for n in range(len(vectors))]
    metadatas = [{"path": i, "genre": "", "split": "test" if rng.random() < 0.2 else "train"} for i in ids]
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="bench-index-vectors-")))
    print(f"input: {len(vectors):,} x {vectors.shape[1]} vectors from {path} (no embedding in this mode)")
    with CoverStore.open(workspace, writer=True) as store:
        collection = store.collection_for("bench-vectors", {"file": str(path)}, create=True)
        started = time.perf_counter()
        collection.upsert(ids, vectors, metadatas)
        seconds = time.perf_counter() - started
        print(f"Chroma insert: {len(ids) / seconds:,.0f} vectors/s ({seconds:.1f}s, batches of "
              f"{collection.max_batch})")
        print_quality(search_quality(collection, queries, seed),
                      chroma_defaults_quality(store, collection, queries, seed))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", type=Path, help=f"a real library, e.g. {SHARED / 'book-covers-gray33'}")
    parser.add_argument("--manifest", type=Path, help="CSV manifest of the library (path,genre)")
    parser.add_argument("--workspace", type=Path, help="workspace to catalog into (default: a temporary one)")
    parser.add_argument("--generated", type=int, default=400, help="covers of the generated library")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bare-covers", type=int, default=512, help="covers for the bare forward timing")
    parser.add_argument("--queries", type=int, default=300, help="queries for recall and latency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="with --library: index a random N of its files")
    parser.add_argument("--split-preprocess", action="store_true",
                        help="run the backbone's preprocessing in the reader thread (prepare/embed_prepared)")
    parser.add_argument("--vectors", type=Path, help="only the Chroma figures, on an n x d .npy of vectors")
    args = parser.parse_args()
    if args.vectors:
        return vectors_only(args.vectors, args.queries, args.seed)

    if args.library is None and not SHARED.is_dir():
        print(f"note: {SHARED} is missing; using a generated library")
    workspace, source = prepare_workspace(args)
    covers = distinct_covers(load_catalog(workspace))
    print(f"input: {source}: {len(covers):,} distinct covers")
    backbone = load_backbone(args.split_preprocess)
    embedder = backbone.embedder
    print(f"embedder: {backbone.description}")
    root = library_root(workspace)
    sample = covers.sample(n=min(args.bare_covers, len(covers)), random_state=args.seed)
    paths = [root / p for p in sample["path"]]
    bare_before, in_memory = bare_forward_rate(backbone, paths, args.batch_size)

    with CoverStore.open(workspace, writer=True) as store:
        report = index_covers(workspace, store, [embedder], rebuild=True, batch_size=args.batch_size)
        end_to_end = report.embedded / report.seconds
        collection = store.collection_for(embedder.name, embedder.identity)
        quality = search_quality(collection, args.queries, args.seed)
        defaults = chroma_defaults_quality(store, collection, args.queries, args.seed)
    bare_after, _ = bare_forward_rate(backbone, paths, args.batch_size)  # bracket the run: load may change
    bare = (bare_before + bare_after) / 2

    ratio = end_to_end / bare
    print(f"bare forward on in-memory tensors: {bare:.1f} covers/s (before the run {bare_before:.1f}, after "
          f"{bare_after:.1f}; batch {args.batch_size}, {len(sample)} covers, {torch_threads()} torch threads)")
    print(f"embed() on decoded images in memory (preprocess + forward): {in_memory:.1f} covers/s")
    print(f"indexing end to end: {report.embedded:,} covers in {report.seconds:.1f}s = {end_to_end:.1f} covers/s")
    print("  stages: " + ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in report.timings.items()))
    busy = report.timings.get(f"embed {embedder.name}", 0.0) / report.seconds
    print(f"  the model was busy {busy:.0%} of the run's wall time (same-run measure, immune to load changes)")
    if report.failures:
        print(f"  {len(report.failures)} unreadable covers skipped")
    verdict = "meets" if ratio >= THROUGHPUT_TARGET else "BELOW"
    print(f"throughput ratio end-to-end / bare forward: {ratio:.2f} ({verdict} target {THROUGHPUT_TARGET})")
    print(f"throughput ratio end-to-end / in-memory embed(): {end_to_end / in_memory:.2f}")
    print_quality(quality, defaults)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
