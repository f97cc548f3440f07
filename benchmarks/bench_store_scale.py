"""How a Chroma store grows: N synthetic cover vectors, embedded store and Chroma server, side by side.

One store per mode is filled step by step up to each size (e.g. 25k, 50k, 100k, 250k); at each
size it reports the build time so far and the insert rate of the last step, the store's bytes on
disk (per cover), the peak RSS of the process holding the index (the embedded writer, or the
`chroma run` server), query p50/p95 (one query, k=10, as the app asks) and recall@10 against exact
search. Then it extrapolates the last step's rates to 1M and 10M covers: an extrapolation, printed
as one, not a measurement.

The vectors are synthetic, not random noise (HNSW on isotropic noise is a needlessly hard case):
clusters in a 64-d latent space mapped to `--dim` dimensions plus noise, L2-normalised, like
projected cover vectors. Each cover carries metadata like a real one (path, genre, split, size).
The exact top-10 is kept by streaming each inserted chunk past the queries, so the benchmark never
holds all N vectors at once (the RSS is the store's, not the benchmark's).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line  # noqa: E402

CHUNK = 5000
GENRES = ["rock", "jazz", "pop", "country", "electronic", "classical", "metal", "folk"]


class Vectors:
    """Deterministic synthetic cover vectors: chunk n is the same whoever asks for it."""

    def __init__(self, dim: int, seed: int = 0, clusters: int = 2000, latent: int = 64) -> None:
        rng = np.random.default_rng(seed)
        self.dim, self.seed = dim, seed
        self.mapping = rng.normal(size=(latent, dim)).astype(np.float32) / np.sqrt(latent)
        self.centres = rng.normal(size=(clusters, latent)).astype(np.float32)

    def chunk(self, n: int, size: int = CHUNK, salt: int = 0) -> np.ndarray:
        rng = np.random.default_rng([self.seed, n, salt])
        latent = self.centres[rng.integers(len(self.centres), size=size)] + 0.6 * rng.normal(
            size=(size, self.centres.shape[1])).astype(np.float32)
        vectors = latent @ self.mapping + 0.3 * rng.normal(size=(size, self.dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def metadata(start: int, count: int) -> list[dict[str, Any]]:
    return [{"path": f"{GENRES[i % 8]}/cover-{i:09d}.jpg", "genre": GENRES[i % 8], "genres": GENRES[i % 8],
             "split": "test" if i % 5 == 0 else "train", "width": 500, "height": 500}
            for i in range(start, start + count)]


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def peak_rss(pid: int) -> int:
    """VmHWM: the peak resident set of a process, in bytes."""
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        if text.startswith("VmHWM:"):
            return int(text.split()[1]) * 1024
    return 0


def fill(mode: str, sizes: list[int], dim: int, queries: int, folder: str, out: Any) -> None:
    """Fill one store to each size in turn, measuring at each (runs in a child process)."""
    import chromadb
    from chromadb.config import Settings

    from coverlens.store.store import HNSW_CONFIGURATION

    settings = Settings(anonymized_telemetry=False)
    server = None
    if mode == "server":
        chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
        port = 18000 + os.getpid() % 1000
        server = subprocess.Popen([chroma, "run", "--path", folder, "--host", "127.0.0.1", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=settings)
                client.heartbeat()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    else:
        client = chromadb.PersistentClient(path=folder, settings=settings)
    try:
        collection = client.create_collection("covers-bench", configuration={"hnsw": dict(HNSW_CONFIGURATION)},
                                              embedding_function=None)
        batch = client.get_max_batch_size()
        source = Vectors(dim)
        probe = source.chunk(0, queries, salt=1)  # query covers: same distribution, not stored
        best_sims = np.full((queries, 10), -np.inf, dtype=np.float32)
        best_ids = np.zeros((queries, 10), dtype=np.int64)
        stored, build = 0, 0.0
        for size in sizes:
            step_started, step_from = time.perf_counter(), stored
            while stored < size:
                count = min(CHUNK, size - stored)
                vectors = source.chunk(stored // CHUNK, count)
                started = time.perf_counter()
                for at in range(0, count, batch):
                    part = slice(at, min(at + batch, count))
                    collection.add(ids=[f"c{stored + i}" for i in range(part.start, part.stop)],
                                   embeddings=vectors[part],
                                   metadatas=metadata(stored + part.start, part.stop - part.start))
                build += time.perf_counter() - started
                sims = probe @ vectors.T  # stream the exact top-10 along
                merged_sims = np.concatenate([best_sims, sims], axis=1)
                merged_ids = np.concatenate([best_ids, np.arange(stored, stored + count)[None, :].repeat(queries, 0)],
                                            axis=1)
                top = np.argsort(-merged_sims, axis=1)[:, :10]
                best_sims, best_ids = np.take_along_axis(merged_sims, top, 1), np.take_along_axis(merged_ids, top, 1)
                stored += count
            step_seconds = time.perf_counter() - step_started
            times, found = [], 0
            for q in range(queries):
                started = time.perf_counter()
                answer = collection.query(query_embeddings=probe[q:q + 1], n_results=10, include=[])
                times.append((time.perf_counter() - started) * 1000)
                found += len({int(i[1:]) for i in answer["ids"][0]} & set(best_ids[q].tolist()))
            times.sort()
            out.put({"mode": mode, "size": size, "build": build, "rate": (stored - step_from) / step_seconds,
                     "disk": disk_bytes(Path(folder)), "rss": peak_rss(server.pid if server else os.getpid()),
                     "p50": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))],
                     "recall": found / (10 * queries)})
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        out.put(None)


def extrapolate(rows: list[dict[str, Any]]) -> None:
    """Scale the last step's marginal rates (insert rate, disk and RSS per added cover) to 1M and 10M
    covers: linear, as a flat HNSW graph grows; search time grows about with log N and is left out."""
    last, before = rows[-1], (rows[-2] if len(rows) > 1 else {"size": 0, "disk": 0, "rss": 0})
    n, added = last["size"], last["size"] - before["size"]
    disk_per, rss_per = (last["disk"] - before["disk"]) / added, (last["rss"] - before["rss"]) / added
    for target in (1_000_000, 10_000_000):
        seconds = last["build"] + (target - n) / last["rate"]
        line(f"  {last['mode']} {target:,} (EXTRAPOLATED)",
             f"build ~{seconds / 3600:.1f} h, disk ~{(last['disk'] + disk_per * (target - n)) / 1e9:.1f} GB, "
             f"RSS ~{(last['rss'] + rss_per * (target - n)) / 1e9:.1f} GB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    parser.add_argument("--dim", type=int, default=256, help="default: the projection coverlens stores (PCA-256)")
    parser.add_argument("--modes", nargs="+", default=["embedded", "server"], choices=["embedded", "server"])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    sizes = sorted(set(args.sizes))
    print(f"{args.dim}-d synthetic cover vectors, sizes {', '.join(f'{s:,}' for s in sizes)}; "
          f"{args.queries} queries, k=10")
    print(f"{'mode':<9} {'covers':>9} {'build s':>8} {'ins/s':>7} {'disk MB':>8} {'B/cover':>8} {'peak RSS MB':>11} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}")
    context = multiprocessing.get_context("spawn")
    for mode in args.modes:
        rows = []
        with tempfile.TemporaryDirectory(prefix=f"bench-store-{mode}-") as folder:
            out = context.Queue()
            child = context.Process(target=fill, args=(mode, sizes, args.dim, args.queries, folder, out))
            child.start()
            while (row := out.get()) is not None:
                rows.append(row)
                print(f"{mode:<9} {row['size']:>9,} {row['build']:>8.1f} {row['rate']:>7.0f} {row['disk'] / 1e6:>8.1f} "
                      f"{row['disk'] / row['size']:>8,.0f} {row['rss'] / 1e6:>11,.0f} {row['p50']:>7.2f} "
                      f"{row['p95']:>7.2f} {row['recall']:>9.4f}", flush=True)
            child.join()
        if rows:
            extrapolate(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
