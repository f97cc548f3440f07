"""The evaluation report: records, the side-by-side table, Markdown + JSON, and the plot files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coverlens.evaluate.metrics import Metrics
from coverlens.workspace import write_json_atomic, write_text_atomic

MARKDOWN_FILE, JSON_FILE, F1_FILE = "evaluation.md", "evaluation.json", "per_genre_f1.png"
TABLE_COLUMNS = ["method", "top-1", "top-3", "macro-F1", "covers", "seconds", "note"]


@dataclass
class MethodResult:
    """One row: metrics when the method ran, else None and the reason in `note`."""

    slug: str
    name: str
    metrics: Metrics | None
    seconds: float | None  # embedding + predicting (the shared image decoding is not counted)
    note: str = ""

    @property
    def ran(self) -> bool:
        return self.metrics is not None


@dataclass
class EvaluationReport:
    workspace: str
    classes: list[str]
    n_test: int  # held-out covers scored (after --limit and unreadable files)
    n_held_out: int  # held-out covers in the catalog
    n_train: int  # train covers (references for the KNN rows, frequencies for the chance row)
    settings: dict[str, Any]
    results: list[MethodResult]
    notes: list[str] = field(default_factory=list)
    decode_seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)
    text_coverage: dict[str, dict[str, Any]] = field(default_factory=dict)  # genre -> legible-text share

    def result(self, slug: str) -> MethodResult | None:
        return next((r for r in self.results if r.slug == slug), None)

    def table_rows(self) -> list[dict[str, str]]:
        return [table_row(r) for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def table_row(result: MethodResult) -> dict[str, str]:
    m = result.metrics
    if m is None:
        return {"method": result.name, "top-1": "-", "top-3": "-", "macro-F1": "-", "covers": "-",
                "seconds": "-", "note": f"skipped: {result.note}"}
    return {"method": result.name, "top-1": _fmt(m.accuracy), "top-3": _fmt(m.top3),
            "macro-F1": _fmt(m.macro_f1), "covers": f"{m.n:,}",
            "seconds": f"{result.seconds:.1f}" if result.seconds is not None else "-", "note": result.note}


def _markdown_table(rows: list[dict[str, str]], columns: list[str]) -> list[str]:
    def cell(value: str) -> str:
        return value.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


def to_markdown(report: EvaluationReport) -> str:
    s = report.settings
    sampled = report.n_test < report.n_held_out
    limited = f" (a seeded sample of {report.n_held_out:,} held-out)" if sampled else ""
    lines = [
        "# Genre evaluation on the held-out split", "",
        f"Workspace `{report.workspace}`: {report.n_test:,} test covers{limited}, "
        f"{report.n_train:,} train covers as KNN references, {len(report.classes)} genres.",
        f"KNN vote: k={s.get('k')}, similarity-weighted; baseline: k={s.get('baseline_k')}, plain majority; "
        f"test-time augmentation {'on' if s.get('tta') else 'off'}. Seconds = embedding + predicting; "
        f"decoding the images once for all methods (overlapped with them) added {report.decode_seconds:.1f} s.",
        "",
    ]
    lines += _markdown_table(report.table_rows(), TABLE_COLUMNS)
    if report.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report.notes]
    if report.text_coverage:
        lines += ["", "## Text coverage", "", "Share of the scored held-out covers with legible text (OCR), per genre; "
                  "the text model speaks only on these, the fused prediction is the head's elsewhere.", ""]
        lines += _markdown_table([{"genre": g, "with text": "n/a" if r["share"] is None else f"{r['share']:.1%}",
                                   "covers": f"{r['covers']:,}", "not read yet": f"{r['unread']:,}"}
                                  for g, r in report.text_coverage.items()],
                                 ["genre", "with text", "covers", "not read yet"])
    ran = [r for r in report.results if r.metrics is not None]
    if ran:
        support = {g: m.support for r in ran if r.metrics for g, m in r.metrics.per_genre.items()}
        lines += ["", "## Per-genre F1", ""]
        rows = [{"genre": g, "support": str(support[g]),
                 **{r.name: _fmt(r.metrics.per_genre[g].f1) for r in ran if r.metrics}}
                for g in report.classes if g in support]
        lines += _markdown_table(rows, ["genre", "support"] + [r.name for r in ran])
        if "per_genre_f1" in report.files:
            lines += ["", f"![per-genre F1]({F1_FILE})"]
        for r in ran:
            assert r.metrics is not None
            lines += ["", f"## {r.name}", ""]
            per = [{"genre": g, "precision": _fmt(m.precision), "recall": _fmt(m.recall), "F1": _fmt(m.f1),
                    "support": str(m.support)} for g, m in r.metrics.per_genre.items()]
            lines += _markdown_table(per, ["genre", "precision", "recall", "F1", "support"])
            image = report.files.get(f"confusion_{r.slug}")
            if image:
                lines += ["", f"![confusion matrix: {r.name}]({Path(image).name})"]
    return "\n".join(lines) + "\n"


def write_report(report: EvaluationReport, reports_dir: Path) -> EvaluationReport:
    """Write the plots, evaluation.json and evaluation.md (each atomically); fill `report.files`."""
    from coverlens.evaluate.plots import confusion_png, per_genre_f1_png

    ran = [r for r in report.results if r.metrics is not None]
    for r in ran:
        assert r.metrics is not None
        target = reports_dir / f"confusion_{r.slug}.png"
        confusion_png(r.metrics.confusion, report.classes,
                      f"{r.name}: top-1 {r.metrics.accuracy:.3f}", target)
        report.files[f"confusion_{r.slug}"] = str(target)
    if ran:
        f1 = {r.name: {g: m.f1 for g, m in r.metrics.per_genre.items()} for r in ran if r.metrics}
        genres = [g for g in report.classes if any(g in scores for scores in f1.values())]
        report.files["per_genre_f1"] = str(per_genre_f1_png(f1, genres, reports_dir / F1_FILE))
    report.files["json"] = str(reports_dir / JSON_FILE)
    report.files["markdown"] = str(reports_dir / MARKDOWN_FILE)
    write_json_atomic(reports_dir / JSON_FILE, report.to_dict())
    write_text_atomic(reports_dir / MARKDOWN_FILE, to_markdown(report))
    return report
