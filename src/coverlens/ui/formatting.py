"""Records in, display values out: gallery items, label dicts, tables and Markdown.

Pure functions (no gradio, no service calls): the tabs pass in a `path_of` resolver (the service's
`cover_image`) that turns a library-relative path and the picture's `source` into what the app
shows: the file, or the decoded picture when it is embedded in an audio file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from coverlens.records import GenreScore, Hit
from coverlens.sources import cover_name

PathOf = Callable[..., Any]  # (relpath[, source]) -> a file Path, or a PIL image when embedded
GalleryItem = tuple[Any, str]


def shown(path_of: PathOf, relpath: str, source: str = "file") -> Any:
    """A gallery value: a file as its path text, an embedded picture as the image itself.

    A file is asked for by its path alone, so a plain `service.cover_path` still serves libraries
    of image files; an embedded picture needs `service.cover_image` (path and source)."""
    value = path_of(relpath) if source in ("", "file") else path_of(relpath, source)
    return str(value) if isinstance(value, (str, Path)) else value


def scores_label(scores: Sequence[GenreScore]) -> dict[str, float] | None:
    """A gr.Label value ({genre: score}); None (an empty label) when there is nothing to show."""
    return {s.genre: float(s.score) for s in scores} or None


def hit_caption(hit: Hit) -> str:
    return f"{hit.genre} · {hit.similarity:.2f}"


def hit_gallery(hits: Iterable[Hit], path_of: PathOf) -> list[GalleryItem]:
    return [(shown(path_of, h.path, h.source), hit_caption(h)) for h in hits]


def hit_gallery_of(hits: Iterable[Hit], image_of: Callable[[Hit], Any]) -> list[GalleryItem]:
    """Like `hit_gallery`, the image chosen per hit (its thumbnail, by the cover's id)."""
    items = []
    for h in hits:
        image = image_of(h)
        items.append((str(image) if isinstance(image, (str, Path)) else image, hit_caption(h)))
    return items


def _availability(state: Any) -> str:
    if state.available is None:
        return "not loaded yet"
    return f"{'available' if state.available else 'unavailable'}{_suffix(state.note)}"


def status_markdown(status: Any) -> str:
    """The engine's state in a few lines, ending with what to do next."""
    indexed = ", ".join(f"{name} {count:,}" for name, count in sorted(status.indexed.items())) or "nothing yet"
    library = f"`{status.library_root}`" if status.library_root else "none catalogued yet"
    lines = [
        f"**Workspace** `{status.workspace}` · **library** {library} · **{status.catalogued:,}** covers catalogued",
        f"- model: {'ready' if status.has_model else 'none'}{_suffix(status.model_note)}",
        f"- covers indexed per embedder: {indexed}"
        + (f" · store last changed {status.store_changed}" if status.store_changed else ""),
        *(f"- {state.label}: {_availability(state)}" for state in status.embedders.values()),
        f"- clusters: {'yes' if status.has_clusters else 'not yet'} · "
        f"evaluation: {'yes' if status.has_evaluation else 'not yet'}",
    ]
    if status.next_step:
        lines.append(f"\n**Next step:** {status.next_step}")
    return "\n".join(lines)


def _suffix(note: str) -> str:
    return f" ({note})" if note else ""


def error_markdown(message: str) -> str:
    return f"**⚠ {message}**"


# --- search ---------------------------------------------------------------------------------


def search_notes(result: Any) -> str:
    """Disagreement between head and vote first (it is the thing to look at), then the notes."""
    lines = []
    if result.agree is False and result.vote is not None and result.head:
        lines.append(f"**⚠ The classifier says _{result.head[0].genre}_ but the nearest covers vote "
                     f"_{result.vote.genre}_**: look at the evidence below.")
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def vote_markdown(vote: Any) -> str:
    if vote is None or vote.genre is None:
        return "No KNN vote (nothing indexed to vote with)."
    share = next((s.score for s in vote.scores if s.genre == vote.genre), None)
    share_text = f" ({share:.0%} of the weighted vote)" if share is not None else ""
    return f"KNN vote: **{vote.genre}**{share_text} from {len(vote.evidence)} neighbours"


def cluster_markdown(placement: Any) -> str:
    if placement is None:
        return "Cluster: none yet (run clustering in the Clusters tab)."
    if placement.cluster_id < 0:
        return "Cluster: none (the cover falls outside every cluster: HDBSCAN calls it noise)."
    return (f"Cluster **{placement.cluster_id}**: mostly _{placement.dominant_genre}_ "
            f"(membership strength {placement.strength:.2f})")


# --- library --------------------------------------------------------------------------------


def overview_markdown(view: Any) -> str:
    s = view.sizes
    common = ", ".join(f"{k} ({v})" for k, v in s.get("common", {}).items())
    unlabelled = getattr(view, "unlabelled", {}).get("distinct", 0)
    source = getattr(view, "source", "")
    return "\n".join([
        f"**{view.files:,}** files · **{view.distinct:,}** distinct covers · **{view.unreadable:,}** unreadable · "
        f"{len(view.genres)} genres · **{unlabelled:,}** unlabelled" + (f" · source: **{source}**" if source else ""),
        f"- byte-identical groups: {len(view.duplicate_groups):,} · label conflicts: {len(view.label_conflicts):,} · "
        f"placeholders: {len(view.placeholders):,} · near-identical groups: {view.near_duplicate_groups:,} "
        f"({view.near_duplicate_covers:,} covers)",
        f"- width {s.get('width_min')}–{s.get('width_max')} (median {s.get('width_median')}), "
        f"height {s.get('height_min')}–{s.get('height_max')} (median {s.get('height_median')}); "
        f"most common: {common or 'n/a'}",
        f"- formats: {_counts(view.formats)} · modes: {_counts(view.modes)}",
    ])


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "n/a"


GENRE_COLUMNS = ["genre", "files", "distinct", "unreadable", "train", "test"]


def genre_table(view: Any) -> pd.DataFrame:
    rows = [{"genre": g, **{c: counts.get(c, 0) for c in GENRE_COLUMNS[1:]}}
            for g, counts in sorted(view.genres.items())]
    return pd.DataFrame(rows, columns=GENRE_COLUMNS)


def genre_split_frame(view: Any) -> pd.DataFrame:
    """Long format for a stacked bar chart: distinct covers per genre, coloured by split."""
    rows = [{"genre": g, "split": split, "covers": counts.get(split, 0)}
            for g, counts in sorted(view.genres.items()) for split in ("train", "test")]
    return pd.DataFrame(rows, columns=["genre", "split", "covers"])


PROBLEM_COLUMNS = ["path", "genre", "reason"]
GROUP_COLUMNS = ["id", "copies", "genres", "paths"]
CLUSTER_COLUMNS = ["cluster", "size", "dominant genre", "purity", "genre mix", "words"]
SUSPECT_COLUMNS = ["#", "path", "filed as", "neighbours vote", "vote share"]
PAIR_COLUMNS = ["a", "a genre", "b", "b genre", "similarity"]


def problems_table(view: Any) -> pd.DataFrame:
    return pd.DataFrame(view.problems, columns=PROBLEM_COLUMNS)


def copy_groups_table(groups: Sequence[Any], shown_paths: int = 3) -> pd.DataFrame:
    rows = [{"id": g.id[:12], "copies": g.count, "genres": ", ".join(g.genres),
             "paths": ", ".join(g.paths[:shown_paths]) + (f" (+{len(g.paths) - shown_paths} more)"
                                                          if len(g.paths) > shown_paths else "")}
            for g in groups]
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


# --- clusters -------------------------------------------------------------------------------


def clusters_table(report: Any) -> pd.DataFrame:
    rows = [{"cluster": c.cluster_id, "size": c.size, "dominant genre": c.dominant_genre,
             "purity": round(float(c.purity), 3),
             "genre mix": ", ".join(f"{g} {n}" for g, n in list(c.genre_mix.items())[:3]),
             "words": ", ".join(c.words[:5])}
            for c in report.clusters]
    return pd.DataFrame(rows, columns=CLUSTER_COLUMNS)


def clusters_markdown(report: Any) -> str:
    return (f"**{len(report.clusters)}** clusters over **{report.n_covers:,}** covers ({report.embedder} embeddings) · "
            f"noise {report.noise_share:.0%} · agreement with genres: ARI {report.ari:.3f}, NMI {report.nmi:.3f} · "
            f"{report.seconds:.1f} s")


def cluster_choices(report: Any) -> list[tuple[str, int]]:
    return [(f"{c.cluster_id}: {c.title()} ({c.size} covers)", c.cluster_id)
            for c in report.clusters]


def genre_mix_frame(summary: Any) -> pd.DataFrame:
    return pd.DataFrame([{"genre": g, "covers": n} for g, n in summary.genre_mix.items()],
                        columns=["genre", "covers"])


# --- evaluation -----------------------------------------------------------------------------


def evaluation_markdown(evaluation: dict[str, Any], table_md: Path | None) -> str:
    """The report's Markdown without its image links (the images are shown beside it)."""
    if table_md is not None and table_md.is_file():
        text = table_md.read_text(encoding="utf-8")
        return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("!["))
    methods = ", ".join(str(r.get("name", r.get("slug", "?"))) for r in evaluation.get("results", []))
    return f"Evaluation on {evaluation.get('n_test', '?')} held-out covers: {methods or 'no methods'}."


def image_gallery(paths: Iterable[Path]) -> list[GalleryItem]:
    """Report images captioned with their file name (confusion_knn_clip -> 'confusion knn clip')."""
    return [(str(p), p.stem.replace("_", " ")) for p in paths if Path(p).is_file()]


# --- suspects -------------------------------------------------------------------------------


def suspects_table(report: Any) -> pd.DataFrame:
    rows = [{"#": i, "path": cover_name(s.path, s.source), "filed as": s.genre, "neighbours vote": s.voted_genre,
             "vote share": round(float(s.vote_share), 3)} for i, s in enumerate(report.label_suspects)]
    return pd.DataFrame(rows, columns=SUSPECT_COLUMNS)


def suspect_choices(report: Any) -> list[tuple[str, int]]:
    return [(f"{cover_name(s.path, s.source)} (filed {s.genre}, looks {s.voted_genre})", i)
            for i, s in enumerate(report.label_suspects)]


def suspect_gallery(suspect: Any, path_of: PathOf) -> list[GalleryItem]:
    """The suspect first, then the neighbours whose vote disagrees with its folder."""
    return ([(shown(path_of, suspect.path, suspect.source), f"suspect · filed {suspect.genre}")]
            + hit_gallery(suspect.evidence, path_of))


def near_duplicates_table(report: Any) -> pd.DataFrame:
    rows = [{"a": cover_name(p.a_path, p.a_source), "a genre": p.a_genre, "b": cover_name(p.b_path, p.b_source),
             "b genre": p.b_genre,
             "similarity": round(float(p.similarity), 4)} for p in report.near_duplicates]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def near_duplicates_gallery(report: Any, path_of: PathOf, pairs: int = 12) -> list[GalleryItem]:
    """Pairs side by side (a, b, a, b, ...) for a gallery with an even number of columns."""
    items: list[GalleryItem] = []
    for p in report.near_duplicates[:pairs]:
        items += [(shown(path_of, p.a_path, p.a_source), f"{p.a_genre} · {p.similarity:.3f}"),
                  (shown(path_of, p.b_path, p.b_source), f"{p.b_genre} · {p.similarity:.3f}")]
    return items


def words_markdown(read: Any) -> str:
    """The words read on a cover (the OCR hook's answer: anything with a `text`)."""
    text = str(getattr(read, "text", "") or "").strip()
    return f"**Words on the cover:** {text}" if text else "No words read on the cover."
