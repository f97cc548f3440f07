"""Side-by-side evaluation on real cover sets: fastai head, KNN baselines, chance.

For each set (default: ../shared/datasets/album-covers-5 and book-covers-color5): catalog it with
its `labels_dedup.csv` manifest into a workspace under bench-output/evaluate/, train the classifier
with `coverlens train` when the workspace has no model yet (about 15 min per set on 2 cores; skip
with --no-train and the rows that need a model are reported as skipped), then evaluate on the
held-out split and print the table. Ends with one line per set comparing each method's top-1 with
the ImageNet KNN baseline and the chance row, measured in the same run.

Reference (issue "Genre classifier"): the notebook's KNN k=5 on ImageNet features reached 0.355
top-1 on the album set.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATASETS, OUTPUT, dataset, line  # noqa: E402
from coverlens.catalog import run_catalog  # noqa: E402
from coverlens.cli.common import print_table, progress_bar  # noqa: E402
from coverlens.evaluate import EvaluationReport, build_collaborators, run_evaluation  # noqa: E402
from coverlens.registry import has_model  # noqa: E402
from coverlens.workspace import Workspace  # noqa: E402

DEFAULT_SETS = ("album-covers-5", "book-covers-color5")
REFERENCE_BASELINE = {"album-covers-5": 0.355}


def train(workspace: Workspace) -> bool:
    """Run `coverlens train` in a child process; False (with the reason printed) when it fails."""
    print(f"training the classifier in {workspace.root} (coverlens train) ...", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "coverlens", "train", "--workspace", str(workspace.root)])
    print(f"coverlens train exited {done.returncode} after {time.perf_counter() - started:.0f} s")
    return done.returncode == 0


def evaluate_set(name: str, args: argparse.Namespace) -> EvaluationReport | None:
    library = dataset(name)
    if library is None:
        return None
    workspace = Workspace(args.output / name)
    started = time.perf_counter()
    summary = run_catalog(workspace, library, manifest=library / "labels_dedup.csv")
    print(f"== {name}: {summary.distinct:,} distinct covers in {summary.genres} genres "
          f"(catalog {time.perf_counter() - started:.1f} s) -> {workspace.root}")
    if not has_model(workspace) and not args.no_train:
        train(workspace)
    skip = {name: "not requested" for name in ("head", "finetuned") if args.baseline_only}
    skip.update({"clip": "--no-clip given"} if args.no_clip else {})
    collaborators = build_collaborators(workspace, skip=skip)
    report = run_evaluation(workspace, **collaborators.as_kwargs(), tta=args.tta, k=args.k, limit=args.limit,
                            progress=progress_bar)
    print_table(report.table_rows())
    for note in report.notes:
        print(f"note: {note}")
    print(f"report: {report.files['markdown']}\n")
    return report


def compare(name: str, report: EvaluationReport) -> None:
    """Each method's top-1 against the baseline and chance of the same run."""
    baseline, chance = report.result("knn-imagenet"), report.result("majority")
    reference = REFERENCE_BASELINE.get(name)
    if baseline is not None and baseline.metrics is not None:
        said = f"{baseline.metrics.accuracy:.3f}"
        if reference is not None:
            said += f" (reference {reference:.3f}, ratio {baseline.metrics.accuracy / reference:.2f})"
        line(f"{name}: KNN k=5 ImageNet baseline top-1", said)
    for result in report.results:
        if result.metrics is None or result.slug in ("knn-imagenet", "majority"):
            continue
        ratios = []
        for label, other in (("baseline", baseline), ("chance", chance)):
            if other is not None and other.metrics is not None and other.metrics.accuracy > 0:
                ratios.append(f"{result.metrics.accuracy / other.metrics.accuracy:.2f}x {label}")
        line(f"{name}: {result.name} top-1", f"{result.metrics.accuracy:.3f} ({', '.join(ratios)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_SETS))
    parser.add_argument("--output", type=Path, default=OUTPUT / "evaluate", help="workspaces go here")
    parser.add_argument("--no-train", action="store_true", help="never train; rows needing a model are skipped")
    parser.add_argument("--baseline-only", action="store_true",
                        help="only the ImageNet KNN baseline (and CLIP unless --no-clip) and chance; "
                        "implies --no-train")
    parser.add_argument("--no-clip", action="store_true")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="at most N held-out covers per set")
    args = parser.parse_args()
    args.no_train = args.no_train or args.baseline_only
    if not DATASETS.is_dir():
        print(f"[skip] {DATASETS} is missing: this benchmark needs ../shared/datasets; nothing measured")
        return 0
    reports = {name: report for name in args.datasets if (report := evaluate_set(name, args)) is not None}
    if reports:
        print("== summary (same run)")
        for name, report in reports.items():
            compare(name, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
