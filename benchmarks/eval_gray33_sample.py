"""Head, text model, fused prediction and KNN rows on a stratified sample of book-covers-gray33.

The full set (17k distinct 128 px covers, 33 genres) takes hours of OCR and training on 2 cores;
a seeded sample of N covers per genre answers "is the fused prediction ever below the head?" in
well under an hour. Everything goes through the real CLI with its defaults, as a user would:

    catalog LIBRARY --manifest SAMPLE.csv -> index (text stage; no model yet) -> train
    -> index (vectors) -> train --text-only (only if train left no text model) -> evaluate

With --parallel (the default) the fastai `train` runs at the same time as the text stage, in a copy
of the catalogued workspace (same catalog, so the same split and the same model), and the model is
copied back before `train --text-only` fits the text model and the fusion weights beside it: the
same result as the sequential flow, in about half the wall time. The text stage is timed on its
own (the first `index`: no model exists yet, so it reads text only), with the load average sampled
while it runs. The sample manifest and the workspace go to --out,
outside the repo. The whole run is `nice`d (10) because the machine is shared.

    python benchmarks/eval_gray33_sample.py [--per-genre 50] [--seed 0] [--out /work/measure/gray33-sample]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dataset, line  # noqa: E402

ROWS = ("head", "text", "fused", "knn-imagenet", "knn-finetuned", "knn-clip", "majority")


def write_sample(labels: Path, out: Path, per_genre: int, seed: int) -> tuple[Path, int, int]:
    """A seeded sample of `per_genre` rows per genre of labels_dedup.csv (all of a smaller genre)."""
    by_genre: dict[str, list[dict[str, str]]] = defaultdict(list)
    with labels.open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_genre[row["genre"]].append(row)
    rng = random.Random(seed)
    chosen = []
    for genre in sorted(by_genre):
        rows = sorted(by_genre[genre], key=lambda r: r["path"])
        chosen += rng.sample(rows, min(per_genre, len(rows)))
    manifest = out / f"sample-{per_genre}-seed{seed}.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "genre"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)
    return manifest, len(chosen), len(by_genre)


class LoadSampler:
    """The 1-minute load average every few seconds while a step runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self.samples.append(os.getloadavg()[0])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def describe(self) -> str:
        s = self.samples
        return f"load average (1 min) mean {sum(s) / len(s):.1f}, max {max(s):.1f} ({len(s)} samples, 2 cores)"


def coverlens(*argv: str, said: list[str] | None = None) -> float:
    """Run one CLI command (same interpreter, so the checkout under test); returns its seconds and
    keeps what it said in `said`."""
    command = [sys.executable, "-m", "coverlens", *argv]
    print("$ nice -n 10 coverlens " + " ".join(argv), flush=True)
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as child:
        assert child.stdout is not None
        for text in child.stdout:
            print(f"[{argv[0]}] {text}", end="", flush=True)
            if said is not None:
                said.append(text.rstrip())
    if child.returncode:
        raise SystemExit(f"coverlens {argv[0]} failed (exit {child.returncode})")
    return time.perf_counter() - started


def text_stage_count(workspace: Path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(workspace / "text" / "text.db") as db:
        total, with_text = db.execute("select count(*), sum(length(trim(text)) >= 2) from covers").fetchone()
    return int(total), int(with_text or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-genre", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/work/measure/gray33-sample"))
    parser.add_argument("--skip-build", action="store_true", help="only train --text-only and evaluate again")
    parser.add_argument("--sequential", dest="parallel", action="store_false",
                        help="train after the text stage instead of beside it")
    args = parser.parse_args()
    library = dataset("book-covers-gray33")
    if library is None:
        return
    os.nice(10)  # a shared machine: the children inherit it
    args.out.mkdir(parents=True, exist_ok=True)
    workspace = args.out / "ws"
    ws = ["-w", str(workspace)]
    manifest, covers, genres = write_sample(library / "labels_dedup.csv", args.out, args.per_genre, args.seed)
    print(f"sample: {covers} covers, {genres} genres, {args.per_genre} per genre, seed {args.seed}: {manifest}")
    times: dict[str, float] = {}
    if not args.skip_build:
        times["catalog"] = coverlens("catalog", str(library), "--manifest", str(manifest), *ws)
        said: list[str] = []
        trainer = None
        if args.parallel:
            head_ws = args.out / "ws-head"
            shutil.rmtree(head_ws, ignore_errors=True)
            shutil.copytree(workspace, head_ws, ignore=shutil.ignore_patterns("text", "store", "writer.lock"))
            trainer = ThreadPoolExecutor(1).submit(coverlens, "train", "-w", str(head_ws))
        with LoadSampler() as load:
            times["index (text stage; no model yet)"] = coverlens("index", "--text", *ws, said=said)
        total, with_text = text_stage_count(workspace)
        if trainer is not None:
            times["train (beside the text stage)"] = trainer.result()
            shutil.rmtree(workspace / "model", ignore_errors=True)
            shutil.copytree(args.out / "ws-head" / "model", workspace / "model")
        else:
            times["train"] = coverlens("train", *ws)
        times["index (vectors)"] = coverlens("index", *ws)
    if args.skip_build or not (workspace / "model" / "fusion.json").exists():
        times["train --text-only"] = coverlens("train", "--text-only", *ws)
    times["evaluate"] = coverlens("evaluate", *ws)
    print(f"\n## book-covers-gray33 sample: {covers} covers ({args.per_genre} per genre of {genres}, seed {args.seed})")
    for step, seconds in times.items():
        line(step, f"{seconds:.0f} s")
    if not args.skip_build:
        stage = times["index (text stage; no model yet)"]
        line("first index (text stage)", f"{stage:.0f} s for the whole command; {total} covers stored, "
             f"{with_text} with text")
        line("text stage's own figure", next((s.split("coverlens: ")[-1] for s in said if "text: " in s), "-"))
        line("while it ran", load.describe())
    report = json.loads((workspace / "reports" / "evaluation.json").read_text())
    rows = {r["slug"]: r for r in report["results"]}
    print(f"test covers: {report['n_test']}")
    for slug in ROWS:
        if slug in rows:
            metrics = rows[slug]["metrics"]
            value = (f"top-1 {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}" if metrics
                     else rows[slug]["note"])
            line(f"{slug}: {rows[slug]['name']}", value)
    if rows.get("head", {}).get("metrics") and rows.get("fused", {}).get("metrics"):
        gap = rows["fused"]["metrics"]["accuracy"] - rows["head"]["metrics"]["accuracy"]
        line("fused - head", f"{gap * 100:+.1f} points")
    coverage = report.get("text_coverage", {}).get("all")
    if coverage:
        line("text coverage (test covers)", f"{coverage['share']:.1%} ({coverage['with_text']}/{coverage['covers']})")


if __name__ == "__main__":
    main()
