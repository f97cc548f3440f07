"""The text stage against the bare OCR call, and text search latency.

1. Stage vs bare OCR, on the same images in the same run, one process per core each: the bare run
   is a process pool calling `OcrReader.read` on each file; the stage is `run_text_stage` (skip
   check, worker pool with recycling, results streamed into SQLite in batches). Prints both times
   and the ratio bare/stage (target >= 0.8). Images: a sample of album-covers-5 when ../shared is
   here, else generated covers with words.
2. Text search p50/p95 over 100k synthetic text records (target p95 <= 50 ms), per kind of query:
   a word, two words, a word with a typo, words with the spaces dropped, two characters.
3. The same over a real text store (`--workspace`, e.g. the album-covers-5 measurement workspace).

    python benchmarks/bench_text.py [--covers 120] [--records 100000] [--workspace WS] [--det-sizes]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import string
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import dataset, line  # noqa: E402
from coverlens.text.ocr import OcrReader, OcrSettings, TextLine  # noqa: E402
from coverlens.text.stage import run_text_stage  # noqa: E402
from coverlens.text.store import CoverText, TextStore  # noqa: E402

_BARE: OcrReader | None = None


def _bare_init(settings: OcrSettings) -> None:
    global _BARE
    _BARE = OcrReader(settings)


def _bare_read(path: str) -> int:
    assert _BARE is not None
    return len(_BARE.read(Path(path)))


def bench_images(count: int, folder: Path) -> list[tuple[str, str]]:
    album = dataset("album-covers-5")
    if album is not None:
        files = sorted(p for p in album.rglob("*.jpg"))
        chosen = random.Random(0).sample(files, min(count, len(files)))
        return [(f"c{i}", str(p)) for i, p in enumerate(chosen)]
    from text_covers import write_word_covers

    words = ["".join(random.Random(i).choices(string.ascii_uppercase, k=6)) for i in range(count)]
    paths = write_word_covers(folder, {f"c{i}": [w, "LIVE"] for i, w in enumerate(words)}, size=300)
    return [(name, str(path)) for name, path in paths.items()]


def stage_vs_bare(count: int, settings: OcrSettings) -> None:
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        covers = bench_images(count, Path(tmp) / "covers")
        started = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_bare_init, initargs=(settings,)) as pool:
            lines = sum(pool.map(_bare_read, [p for _, p in covers], chunksize=1))
        bare = time.perf_counter() - started
        started = time.perf_counter()
        with TextStore(Path(tmp) / "text.db") as store:
            summary = run_text_stage(store, covers, settings=settings, workers=workers)
            stored_lines = sum(len(r.lines) for r in store.get([c for c, _ in covers]).values())
        stage = time.perf_counter() - started
    print(f"\n## text stage vs bare OCR: {len(covers)} covers, {workers} processes, det side {settings.det_side}")
    line("bare OCR (process pool, OcrReader.read)", f"{bare:.1f} s  ({len(covers) / bare:.2f} covers/s, {lines} lines)")
    line("text stage (run_text_stage into SQLite)", f"{stage:.1f} s  ({len(covers) / stage:.2f} covers/s, "
         f"{stored_lines} lines, {summary.failed} failed)")
    line("ratio bare/stage (target >= 0.8)", f"{bare / stage:.2f}")


def det_sizes(count: int) -> None:
    """Speed vs text read for detection sizes, one process (sizes compared on the same covers)."""
    from coverlens.images import open_image

    with tempfile.TemporaryDirectory() as tmp:
        images = [open_image(p) for _, p in bench_images(count, Path(tmp) / "covers")]
    print(f"\n## detection size: {len(images)} covers, one process")
    for side in (320, 480, 640, 736, 960):
        reader = OcrReader(OcrSettings(det_side=side))
        reader.read(images[0])
        started = time.perf_counter()
        results = [reader.read(image) for image in images]
        seconds = time.perf_counter() - started
        chars = sum(len(x.text) for r in results for x in r)
        line(f"det side {side}", f"{len(images) / seconds:.2f} covers/s, {sum(map(bool, results))} with text, "
             f"{chars} characters")


WORDS = [w.strip() for w in """
love night blue live greatest hits best of symphony orchestra quartet concerto volume records deluxe edition
remastered collection anthology soul funk disco metal rock roll country western blues jazz trio band feat
the and of in on with from music songs sound original motion picture soundtrack christmas summer dance club
remix acoustic session unplugged world tour heart fire dream city river mountain angel devil black white
red green gold silver diamond star moon sun rain storm electric machine future past young old boys girls
""".split()]


def synthetic_text(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 4)):
        words = [rng.choice(WORDS) if rng.random() < 0.7 else
                 "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(rng.randint(1, 4))]
        text = ("" if rng.random() < 0.3 else " ").join(words)  # OCR drops spaces on ~30% of lines
        lines.append(text.upper() if rng.random() < 0.5 else text.title())
    return "\n".join(lines)


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1:]


def queries(rng: random.Random, texts: list[str], n: int) -> dict[str, list[str]]:
    """Queries drawn from the stored texts themselves, so most have answers."""
    def words() -> list[str]:
        found = [w for w in rng.choice(texts).lower().split() if len(w) >= 3]
        return found or ["love"]

    kinds: dict[str, list[str]] = {"word": [], "two words": [], "typo": [], "no spaces": [], "2 chars": []}
    for _ in range(n):
        ws = words()
        kinds["word"].append(rng.choice(ws))
        kinds["two words"].append(" ".join(rng.sample(ws, 2)) if len(ws) > 1 else ws[0] + " " + rng.choice(WORDS))
        kinds["typo"].append(typo(rng.choice(ws), rng))
        kinds["no spaces"].append("".join(ws[:2]))
        kinds["2 chars"].append(rng.choice(ws)[:2])
    return kinds


def time_search(store: TextStore, kinds: dict[str, list[str]], label: str) -> None:
    print(f"\n## text search: {label}")
    store.find("warm up")
    everything = []
    for kind, qs in kinds.items():
        times = []
        found = 0
        for q in qs:
            started = time.perf_counter()
            hits = store.find(q, limit=20)
            times.append((time.perf_counter() - started) * 1000)
            found += bool(hits)
        everything += times
        line(f"{kind} ({len(qs)} queries, {found} with hits)",
             f"p50 {np.percentile(times, 50):.1f} ms  p95 {np.percentile(times, 95):.1f} ms")
    line("all queries (target p95 <= 50 ms)",
         f"p50 {np.percentile(everything, 50):.1f} ms  p95 {np.percentile(everything, 95):.1f} ms")


def synthetic_search(records: int, n_queries: int) -> None:
    rng = random.Random(0)
    box = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    with tempfile.TemporaryDirectory() as tmp, TextStore(Path(tmp) / "text.db") as store:
        started = time.perf_counter()
        texts = []
        for start in range(0, records, 5000):
            batch = []
            for i in range(start, min(records, start + 5000)):
                text = synthetic_text(rng) if rng.random() < 0.9 else ""
                texts.append(text)
                batch.append(CoverText.read(f"{i:032x}", "synthetic",
                                            [TextLine(t, box, 0.9) for t in text.splitlines()]))
            store.put(batch)
        line(f"insert {records:,} synthetic records", f"{time.perf_counter() - started:.1f} s")
        time_search(store, queries(rng, [t for t in texts if t], n_queries), f"{records:,} synthetic records")


def real_search(workspace: Path, n_queries: int) -> None:
    from coverlens.text.store import text_db_path

    path = text_db_path(workspace)
    if not path.exists():
        print(f"[skip] no text store at {path}")
        return
    with TextStore(path, readonly=True) as store:
        texts = [row[3] for row in store.dump() if row[3]]
        time_search(store, queries(random.Random(1), texts, n_queries), f"{path} ({len(texts):,} covers with text)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covers", type=int, default=120, help="covers for stage vs bare OCR (0: skip)")
    parser.add_argument("--records", type=int, default=100_000, help="synthetic records for search (0: skip)")
    parser.add_argument("--queries", type=int, default=100, help="queries per kind")
    parser.add_argument("--workspace", type=Path, help="a workspace whose text store to search too")
    parser.add_argument("--det-sizes", type=int, default=0, metavar="N", help="compare detection sizes on N covers")
    args = parser.parse_args()
    if args.det_sizes:
        det_sizes(args.det_sizes)
    if args.covers:
        stage_vs_bare(args.covers, OcrSettings())
    if args.records:
        synthetic_search(args.records, args.queries)
    if args.workspace:
        real_search(args.workspace.resolve(), args.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
