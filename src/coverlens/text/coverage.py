"""Text coverage: the share of covers with legible text (what the text stage stored), per genre.

A cover counts as legible when its stored text is at least two characters (the text model's own
test, `model.has_text`); covers the text stage has not stored yet are counted apart ("unread"), so
a report made while the stage is still running says so instead of lowering the share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coverlens.workspace import Workspace

ALL = "all"


def text_coverage(workspace: Workspace, ids: Sequence[str], genres: Sequence[str]) -> dict[str, dict[str, Any]]:
    """genre -> {covers, with_text, unread, share}, plus an "all" row; {} when no text store exists."""
    from coverlens.text.model import has_text
    from coverlens.text.stage import text_store_for
    from coverlens.text.store import text_db_path

    if not text_db_path(workspace.root).exists():
        return {}
    with text_store_for(workspace.root, readonly=True) as store:
        stored = store.get(ids)
    legible = has_text([stored[i].text if i in stored else "" for i in ids])
    rows: dict[str, dict[str, Any]] = {}
    for genre in [*sorted(set(genres)), ALL]:
        chosen = [n for n, g in enumerate(genres) if genre in (g, ALL)]
        unread = sum(ids[n] not in stored for n in chosen)
        with_text = int(sum(bool(legible[n]) for n in chosen))
        read = len(chosen) - unread
        rows[genre] = {"covers": len(chosen), "with_text": with_text, "unread": unread,
                       "share": round(with_text / read, 4) if read else None}
    return rows


def coverage_lines(coverage: dict[str, dict[str, Any]]) -> list[str]:
    """One line per genre: "country   93.3% of 128 covers (2 not read yet)"."""
    lines = []
    for genre, row in coverage.items():
        share = "n/a" if row["share"] is None else f"{row['share']:.1%}"
        unread = f" ({row['unread']:,} not read yet)" if row["unread"] else ""
        lines.append(f"{genre:<16} {share:>6} of {row['covers']:,} covers{unread}")
    return lines
