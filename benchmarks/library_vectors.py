"""ImageNet mobilenet_v2 vectors of a genre-folder library, embedded once and kept in a cache folder.

`vectors_of_library(root, cache)` reads `root/labels.csv` (path, genre, md5), keeps one cover per
distinct md5 (the first row: its genre), embeds the covers with the ImageNet body and writes
`vectors.npy`, `labels.csv` (id, genre) to `cache`; a second call loads them. Used by
bench_clusters.py for book-covers-gray33 (23.5k distinct covers), where no store exists.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

BATCH = 64


def distinct_covers(root: Path) -> list[tuple[str, str, str]]:
    """(md5, relative path, genre) of each distinct cover, in manifest order."""
    seen: dict[str, tuple[str, str, str]] = {}
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            seen.setdefault(row["md5"], (row["md5"], row["path"], row["genre"]))
    return list(seen.values())


def read_cache(cache: Path) -> tuple[np.ndarray, list[str], list[str]] | None:
    if not ((cache / "vectors.npy").exists() and (cache / "labels.csv").exists()):
        return None
    with open(cache / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return np.load(cache / "vectors.npy"), [r["id"] for r in rows], [r["genre"] for r in rows]


def vectors_of_library(root: Path, cache: Path, *, image_size: int = 128) -> tuple[np.ndarray, list[str], list[str]]:
    """(vectors, ids, genres), from the cache or embedded now (minutes for 23k covers on 2 cores)."""
    cached = read_cache(cache)
    if cached is not None:
        print(f"   vectors from cache {cache} ({len(cached[1]):,} covers)")
        return cached
    from coverlens.embedders.backbone import ImagenetBackboneEmbedder
    from coverlens.images import open_image
    from coverlens.workspace import atomic_path

    covers = distinct_covers(root)
    embedder = ImagenetBackboneEmbedder(arch="mobilenet_v2", image_size=image_size, pretrained=True)
    started, parts = time.perf_counter(), []
    for start in range(0, len(covers), BATCH):
        batch = covers[start:start + BATCH]
        parts.append(embedder.embed([open_image(root / path) for _, path, _ in batch]).astype(np.float32))
        if (start // BATCH) % 50 == 0:
            print(f"   embedded {start + len(batch):,}/{len(covers):,} in {time.perf_counter() - started:.0f}s",
                  flush=True)
    vectors = np.concatenate(parts)
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache / "vectors.npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, vectors)
    with atomic_path(cache / "labels.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "genre"])
        writer.writerows((md5, genre) for md5, _, genre in covers)
    print(f"   embedded {len(covers):,} covers in {time.perf_counter() - started:.0f}s -> {cache}")
    return vectors, [c[0] for c in covers], [c[2] for c in covers]
