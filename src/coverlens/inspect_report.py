"""`coverlens inspect`: the overview of a catalogued library a person wants before training.

Pure summaries over the catalog frame, plus a writer for Markdown and a bar chart PNG. Covers
without a genre are counted apart (`unlabelled`), never as a genre.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.workspace import Workspace, atomic_path, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PLACEHOLDER_MIN = 20
UNLABELLED_ROW = "(unlabelled)"


@dataclass
class CopyGroup:
    """Covers sharing one content hash: byte-identical copies."""

    id: str
    count: int
    genres: list[str]
    paths: list[str]


@dataclass
class LibraryOverview:
    files: int
    distinct: int
    unreadable: int
    genres: dict[str, dict[str, int]]  # genre -> files, distinct, unreadable, train, test (labelled only)
    sizes: dict[str, Any]
    formats: dict[str, int]
    modes: dict[str, int]
    problems: list[dict[str, str]]  # unreadable files with reasons
    duplicate_groups: list[CopyGroup] = field(default_factory=list)
    label_conflicts: list[CopyGroup] = field(default_factory=list)
    placeholders: list[CopyGroup] = field(default_factory=list)
    near_duplicate_groups: int = 0
    near_duplicate_covers: int = 0
    unlabelled: dict[str, int] = field(default_factory=lambda: {"files": 0, "distinct": 0, "unreadable": 0})
    source: str = ""  # the library's kind (folders, csv, music, calibre), as library.json records it


def _groups(ok: pd.DataFrame, ids: pd.Index) -> list[CopyGroup]:
    subset = ok[ok["id"].isin(ids)]
    groups = [
        CopyGroup(str(cid), len(g), sorted(set(g["genre"])), sorted(g["path"]))
        for cid, g in subset.groupby("id", sort=False)
    ]
    return sorted(groups, key=lambda g: (-g.count, g.id))


def overview(catalog: pd.DataFrame, *, placeholder_min: int = DEFAULT_PLACEHOLDER_MIN) -> LibraryOverview:
    ok = catalog[catalog["status"] == "ok"]
    bad = catalog[catalog["status"] != "ok"]
    copies = ok.groupby("id")["path"].size()
    genre_count = ok[ok["genre"] != ""].groupby("id")["genre"].nunique()
    first = ok.drop_duplicates("id")
    genres: dict[str, dict[str, int]] = {}
    unlabelled = {"files": 0, "distinct": 0, "unreadable": 0}
    for genre, rows in catalog.groupby("genre"):
        good = rows[rows["status"] == "ok"]
        distinct = good.drop_duplicates("id")
        counts = {"files": len(rows), "distinct": len(distinct), "unreadable": len(rows) - len(good)}
        if genre == "":
            # a cover with a labelled copy is not unlabelled: count only ids with no genre anywhere
            counts["distinct"] = int((distinct["split"] == "unlabelled").sum())
            unlabelled = counts
            continue
        genres[str(genre)] = {**counts, "train": int((distinct["split"] == "train").sum()),
                              "test": int((distinct["split"] == "test").sum())}
    near = first[first["dhash"] != ""].groupby("dhash")["id"].size()
    near = near[near > 1]
    sizes = {
        "width_min": int(first["width"].min()) if len(first) else 0,
        "width_median": float(first["width"].median()) if len(first) else 0,
        "width_max": int(first["width"].max()) if len(first) else 0,
        "height_min": int(first["height"].min()) if len(first) else 0,
        "height_median": float(first["height"].median()) if len(first) else 0,
        "height_max": int(first["height"].max()) if len(first) else 0,
        "common": {f"{w}x{h}": int(n) for (w, h), n in
                   first.groupby(["width", "height"]).size().nlargest(5).items()},
    }
    return LibraryOverview(
        files=len(catalog), distinct=int(ok["id"].nunique()), unreadable=len(bad), genres=genres,
        sizes=sizes, formats={str(k): int(v) for k, v in first["format"].value_counts().items()},
        modes={str(k): int(v) for k, v in first["mode"].value_counts().items()},
        problems=[{"path": r.path, "genre": r.genre, "reason": r.reason} for r in bad.itertuples()],
        duplicate_groups=_groups(ok, copies[copies > 1].index),
        label_conflicts=_groups(ok, genre_count[genre_count > 1].index),
        placeholders=_groups(ok, copies[copies >= placeholder_min].index),
        near_duplicate_groups=len(near), near_duplicate_covers=int(near.sum()), unlabelled=unlabelled,
    )


def to_markdown(view: LibraryOverview, *, chart_name: str | None = None, list_limit: int = 20) -> str:
    lines = [
        "# Library overview", "",
        f"- files: {view.files:,}", f"- distinct images (by content hash): {view.distinct:,}",
        f"- unreadable files: {view.unreadable:,}",
        f"- unlabelled covers (no genre; never trained or tested on): {view.unlabelled['distinct']:,} "
        f"({view.unlabelled['files']:,} files)",
        f"- groups of byte-identical covers: {len(view.duplicate_groups):,} "
        f"({sum(g.count for g in view.duplicate_groups):,} files)",
        f"- covers filed under more than one genre (label conflicts): {len(view.label_conflicts):,}",
        f"- placeholders (one image repeated many times): {len(view.placeholders):,}",
        f"- near-identical groups (same perceptual hash, different bytes): {view.near_duplicate_groups:,} "
        f"({view.near_duplicate_covers:,} covers)",
        "", "## Covers per genre", "", "| genre | files | distinct | unreadable | train | test |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for genre, c in sorted(view.genres.items()):
        lines.append(f"| {genre} | {c['files']} | {c['distinct']} | {c['unreadable']} | {c['train']} | {c['test']} |")
    if view.unlabelled["files"]:
        u = view.unlabelled
        lines.append(f"| {UNLABELLED_ROW} | {u['files']} | {u['distinct']} | {u['unreadable']} | - | - |")
    if chart_name:
        lines += ["", f"![covers per genre]({chart_name})"]
    s = view.sizes
    lines += [
        "", "## Sizes, formats, modes", "",
        f"- width: min {s['width_min']}, median {s['width_median']:g}, max {s['width_max']}",
        f"- height: min {s['height_min']}, median {s['height_median']:g}, max {s['height_max']}",
        f"- most common sizes: {', '.join(f'{k} ({v})' for k, v in s['common'].items())}",
        f"- formats: {', '.join(f'{k} ({v})' for k, v in view.formats.items())}",
        f"- modes: {', '.join(f'{k} ({v})' for k, v in view.modes.items())}",
    ]
    sections = [
        ("Unreadable files", [f"- `{p['path']}` ({p['genre']}): {p['reason']}" for p in view.problems]),
        ("Placeholders", [f"- `{g.id}` x{g.count} in {', '.join(g.genres)}, e.g. `{g.paths[0]}`"
                          for g in view.placeholders]),
        ("Label conflicts", [f"- `{g.id}` x{g.count}: {', '.join(g.genres)} (e.g. `{g.paths[0]}`)"
                             for g in view.label_conflicts]),
        ("Byte-identical groups", [f"- `{g.id}` x{g.count}: {', '.join(f'`{p}`' for p in g.paths[:4])}"
                                   for g in view.duplicate_groups]),
    ]
    for title, items in sections:
        lines += ["", f"## {title} ({len(items)})", ""]
        lines += items[:list_limit] or ["none"]
        if len(items) > list_limit:
            lines.append(f"- ... and {len(items) - list_limit} more")
    return "\n".join(lines) + "\n"


def genre_bar_chart(view: LibraryOverview, target: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = dict(sorted(view.genres.items()))
    if view.unlabelled["files"]:
        counts[UNLABELLED_ROW] = view.unlabelled
    names = list(counts)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) + 2), 4.5))
    colours = ["#999999" if n == UNLABELLED_ROW else "#4c72b0" for n in names]
    ax.bar(names, [counts[n]["distinct"] for n in names], color=colours, label="distinct")
    ax.bar(names, [counts[n]["files"] - counts[n]["distinct"] for n in names],
           bottom=[counts[n]["distinct"] for n in names], color="#dd8452", label="extra copies / unreadable")
    ax.set_ylabel("covers")
    ax.set_title("Covers per genre")
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=60, ha="right")
    fig.tight_layout()
    with atomic_path(target) as tmp:  # a killed run leaves the old chart, never half a PNG
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return target


def write_inspect_report(workspace: Workspace, catalog: pd.DataFrame, **kwargs: Any) -> tuple[LibraryOverview, Path]:
    view = overview(catalog, **kwargs)
    chart = genre_bar_chart(view, workspace.reports_dir / "genres.png")
    report = workspace.reports_dir / "inspect.md"
    write_text_atomic(report, to_markdown(view, chart_name=chart.name))
    return view, report
