"""The suspects report: Markdown for people, JSON for tools (pure formatting, plus one writer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coverlens.search.suspects import LabelSuspect, NearDuplicatePair
from coverlens.sources import cover_name
from coverlens.workspace import write_json_atomic, write_text_atomic

MARKDOWN_ROWS = 200


def _same(path: str) -> str:
    return path


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def suspects_json(
    suspects: Sequence[LabelSuspect], pairs: Sequence[NearDuplicatePair], params: dict[str, Any]
) -> dict[str, Any]:
    return {"params": params, "label_suspects": [asdict(s) for s in suspects],
            "near_duplicates": [{**asdict(p), "cross_genre": p.cross_genre} for p in pairs]}


def suspects_markdown(
    suspects: Sequence[LabelSuspect],
    pairs: Sequence[NearDuplicatePair],
    params: dict[str, Any],
    *,
    show_path: Callable[[str], str] = _same,
    rows: int = MARKDOWN_ROWS,
) -> str:
    """Both lists as Markdown tables (the first `rows` of each; the JSON has all)."""
    lines = [f"# Suspects: {params.get('embedder', '')} embeddings", "",
             "Settings: " + ", ".join(f"{k} = {v}" for k, v in params.items()), "",
             f"## Covers that may be filed under the wrong genre ({len(suspects)})", "",
             "Their nearest covers vote, weighted by similarity, for another genre.", ""]
    if suspects:
        lines += ["| cover | filed as | neighbours say | share | closest neighbours |", "|---|---|---|---|---|"]
        for s in suspects[:rows]:
            closest = "; ".join(f"{h.genre} {h.similarity:.3f}" for h in s.evidence[:3])
            lines.append(f"| `{_cell(cover_name(show_path(s.path), s.source))}` | {s.genre} | {s.voted_genre} | "
                         f"{s.vote_share:.0%} | {closest} |")
    else:
        lines.append("none")
    cross = sum(p.cross_genre for p in pairs)
    lines += ["", f"## Near-duplicate pairs ({len(pairs)}, {cross} across genres)", ""]
    if pairs:
        lines += ["| similarity | cover A | genre A | cover B | genre B |", "|---|---|---|---|---|"]
        for p in pairs[:rows]:
            lines.append(f"| {p.similarity:.4f} | `{_cell(cover_name(show_path(p.a_path), p.a_source))}` | "
                         f"{p.a_genre} | `{_cell(cover_name(show_path(p.b_path), p.b_source))}` | {p.b_genre} |")
    else:
        lines.append("none")
    for total in (len(suspects), len(pairs)):
        if total > rows:
            lines += ["", f"Only the first {rows} rows of each list are shown; the JSON report has all."]
            break
    return "\n".join(lines) + "\n"


def write_suspects_report(
    reports_dir: Path,
    embedder: str,
    suspects: Sequence[LabelSuspect],
    pairs: Sequence[NearDuplicatePair],
    params: dict[str, Any],
    *,
    show_path: Callable[[str], str] = _same,
) -> tuple[Path, Path]:
    """Write `suspects-<embedder>.md` and `.json` into `reports_dir`; return both paths."""
    markdown = reports_dir / f"suspects-{embedder}.md"
    data = reports_dir / f"suspects-{embedder}.json"
    write_text_atomic(markdown, suspects_markdown(suspects, pairs, params, show_path=show_path))
    write_json_atomic(data, suspects_json(suspects, pairs, params))
    return markdown, data
