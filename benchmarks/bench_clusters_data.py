"""Where bench_clusters.py gets its vectors, genres and texts (see its docstring for the choices)."""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Data:
    vectors: np.ndarray
    genres: list[str]
    ids: list[str]
    texts: dict[str, str] | None
    source: str


def synthetic(n: int, dim: int = 1280, genres: int = 33, seed: int = 0) -> tuple[np.ndarray, list[str]]:
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


def from_workspace(root: Path, embedder: str) -> Data:
    from coverlens.clustering.texts import text_db, workspace_texts
    from coverlens.service import CoverlensService
    from coverlens.workspace import Workspace

    workspace = Workspace(root.resolve())
    service = CoverlensService(workspace)
    try:
        stored = service.stored_collection(embedder).fetch()
    finally:
        service.close()
    genres = [str(m.get("genre") or "") for m in stored.metadatas]
    texts = workspace_texts(workspace, stored.ids)
    with_text = len(texts or {})
    note = f"text for {with_text:,} covers from {text_db(workspace)}" if texts else "no OCR text"
    return Data(stored.vectors, genres, list(stored.ids), texts,
                f"REAL {embedder} vectors stored in {root} ({len(stored.ids):,} x {stored.vectors.shape[1]}); {note}")


def load_vectors(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Data:
    if args.workspace:
        return from_workspace(args.workspace, args.embedder)
    if args.library:
        from library_vectors import vectors_of_library

        if not (args.library / "labels.csv").exists():
            parser.error(f"{args.library}/labels.csv not found (is ../shared/datasets there?)")
        cache = args.cache or Path.home() / ".cache" / "coverlens-bench" / f"{args.library.name}-imagenet128"
        vectors, ids, genres = vectors_of_library(args.library, cache)
        return Data(vectors, genres, ids, None,
                    f"REAL ImageNet mobilenet_v2 vectors of {args.library} ({len(ids):,} distinct covers x "
                    f"{vectors.shape[1]}, 128 px; cached in {cache})")
    if args.vectors:
        if not args.labels:
            parser.error("--vectors needs --labels")
        vectors = np.load(args.vectors).astype(np.float32)
        genres = read_labels(args.labels)
        if len(genres) != len(vectors):
            parser.error(f"{len(vectors)} vectors but {len(genres)} labels")
        return Data(vectors, genres, [f"c{i}" for i in range(len(vectors))], None,
                    f"REAL vectors {args.vectors} ({len(vectors):,} x {vectors.shape[1]}), labels {args.labels}")
    started = time.perf_counter()
    vectors, genres = synthetic(args.n, seed=args.seed)
    return Data(vectors, genres, [f"c{i}" for i in range(len(vectors))], None,
                f"SYNTHETIC vectors ({args.n:,} x 1280, 33 genres x 3 sub-styles, 10% shuffled labels, "
                f"5% background; made in {time.perf_counter() - started:.1f}s)")
