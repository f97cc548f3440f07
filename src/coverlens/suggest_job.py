"""`run_suggest`: gather the evidence for genre suggestions and write them to the workspace.

The vote comes from the stored vectors (every catalogued cover is indexed, unlabelled ones too):
each cover's k nearest labelled other covers vote, as in `coverlens.search.suspects`. The genre
signals (the head, and any other registered one) need the pictures: they are read through the
one cover reader and fed in batches, only for the covers that can get a suggestion, i.e. the
unlabelled ones and the labelled ones whose vote already goes to a genre they are not filed under
(a suspect needs the vote to disagree, so the head is never run on the rest of the library).

Writes `<workspace>/reports/suggestions.csv` and `suggestions.json`; the library is only read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.defaults import BATCH_SIZE, SUGGEST_MIN_CONFIDENCE, VOTE_K
from coverlens.errors import WorkspaceError
from coverlens.suggest import SUSPECT, UNLABELLED, CoverFacts, Suggestion, columns, suggest_genres
from coverlens.workspace import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    import numpy as np

    from coverlens.records import Hit
    from coverlens.registry import GenreModel, Kept, Registry
    from coverlens.store import StoredVectors
    from coverlens.workspace import Workspace

Progress = Callable[[Iterable[Any], int], Iterable[Any]]
CSV_NAME, JSON_NAME = "suggestions.csv", "suggestions.json"


@dataclass
class SuggestReport:
    suggestions: list[Suggestion]
    classes: list[str]
    signal_names: list[str]  # the genre signals that were asked (each has its CSV columns)
    unlabelled: int  # unlabelled covers in the catalog
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    csv: Path | None = None
    json: Path | None = None

    def count(self, kind: str) -> int:
        return sum(1 for s in self.suggestions if s.kind == kind)

    def rows(self) -> list[dict[str, Any]]:
        return [s.row(self.signal_names) for s in self.suggestions]

    def summary(self) -> str:
        return (f"{self.count(UNLABELLED):,} suggestions for {self.unlabelled:,} unlabelled covers, "
                f"{self.count(SUSPECT):,} labelled covers the engine confidently doubts "
                f"(signals: {', '.join([*self.signal_names, 'vote']) or 'none'})")


def _facts(covers: Any) -> list[CoverFacts]:
    return [CoverFacts(str(r["id"]), str(r["path"]), str(r["source"] or "file"), str(r["genre"]), str(r["genres"]),
                       str(r["title"]), str(r["creator"])) for r in covers.to_dict("records")]


def stored_votes(stored: StoredVectors, facts: list[CoverFacts], classes: list[str], *, k: int
                 ) -> tuple[np.ndarray, dict[int, list[Hit]], int]:
    """(vote shares (n, classes), NaN where a cover has no stored vector; the neighbours that voted,
    for the covers that can get a suggestion; how many covers have a stored vector)."""
    import numpy as np

    from coverlens.embedders import l2_normalise
    from coverlens.search.suspects import evidence_hits, labelled_votes

    row_of = {f.id: i for i, f in enumerate(facts)}
    kept = [j for j, cover_id in enumerate(stored.ids) if cover_id in row_of]
    vote = np.full((len(facts), len(classes)), np.nan)
    neighbours: dict[int, list[Hit]] = {}
    if not kept:
        return vote, neighbours, 0
    unit = l2_normalise(stored.vectors[kept])
    rows = [row_of[stored.ids[j]] for j in kept]  # facts index of each stored vector
    genres = [facts[i].genre for i in rows]
    labelled = np.flatnonzero(np.array([bool(g) for g in genres], dtype=bool))
    ids, paths, sources = [facts[i].id for i in rows], [facts[i].path for i in rows], [facts[i].source for i in rows]
    for chunk in labelled_votes(unit, genres, classes, np.arange(len(rows)), k=k):
        for n, j in enumerate(chunk.rows):
            i = rows[int(j)]
            vote[i] = chunk.scores[n]
            filed = {g for g in facts[i].genres.split("|") if g}
            if not facts[i].genre or classes[int(np.argmax(chunk.scores[n]))] not in filed:
                neighbours[i] = evidence_hits(chunk.similarities[n], chunk.k, labelled, ids, genres, paths, None,
                                              sources)
    return vote, neighbours, len(kept)


def run_suggest(
    workspace: Workspace,
    *,
    signals: Mapping[str, GenreModel],
    stored: StoredVectors | None,
    embedder: str,
    k: int = VOTE_K,
    min_confidence: float = SUGGEST_MIN_CONFIDENCE,
    batch_size: int = BATCH_SIZE,
    notes: Iterable[str] = (),
    progress: Progress | None = None,
    write: bool = True,
) -> SuggestReport:
    """Suggestions for the unlabelled and the suspect covers of the workspace's catalog.

    `signals`: the genre signals that could be built (name -> model), in registry order; the first
    is the primary one a suspect's vote must agree with. `stored`: the embedder's stored vectors
    (None: no vote; then only unlabelled covers get suggestions).
    """
    import numpy as np

    from coverlens.catalog import distinct_covers, library_root, load_catalog
    from coverlens.evaluate.methods import align_columns
    from coverlens.evaluate.passes import CoverRef, run_pass, signal_feed

    if k < 1 or batch_size < 1 or not 0.0 <= min_confidence <= 1.0:
        raise ValueError("k and batch_size must be at least 1, min_confidence within 0-1")
    facts = _facts(distinct_covers(load_catalog(workspace)))
    classes = sorted({f.genre for f in facts} - {""})
    if not classes:
        raise WorkspaceError(f"the catalog in {workspace.root} has no labelled cover: nothing to suggest from")
    said = list(notes)
    if stored is not None:
        vote, neighbours, indexed = stored_votes(stored, facts, classes, k=k)
        if indexed < len(facts):
            said.append(f"{len(facts) - indexed:,} catalogued covers have no stored {embedder} vector "
                        "(run `coverlens index`): no vote for them")
    else:
        vote, neighbours = np.full((len(facts), len(classes)), np.nan), {}
        said.append(f"no stored {embedder} vectors: no KNN vote, so no suspects (run `coverlens index`)")
    wanted = [i for i, f in enumerate(facts) if not f.genre or i in neighbours]
    root = library_root(workspace)
    refs = [CoverRef(root, facts[i].path, facts[i].source) for i in wanted]
    ids = [facts[i].id for i in wanted]
    feeds = {name: signal_feed(model, ids) for name, model in signals.items()}  # stored words used where known
    done = run_pass(refs, feeds, batch_size=batch_size, progress=progress)
    for name, reason in done.failed.items():
        said.append(f"{name}: {reason}")
    if done.unreadable:
        shown = "; ".join(f"{p}: {r}" for p, r in done.unreadable[:5])
        said.append(f"{len(done.unreadable):,} covers could not be opened, no signal for them ({shown})")
    arrays = {}
    for name, model in signals.items():
        array = np.full((len(wanted), len(classes)), np.nan)
        if name in done.outputs:
            array[done.rows[name]] = align_columns(done.outputs[name], list(model.classes), classes)
        arrays[name] = array
    subset = [facts[i] for i in wanted]
    suggestions = suggest_genres(subset, classes, arrays, vote[wanted] if wanted else None,
                                 {n: neighbours[i] for n, i in enumerate(wanted) if i in neighbours},
                                 primary=next(iter(signals), None), min_confidence=min_confidence)
    report = SuggestReport(suggestions, classes, list(signals), sum(1 for f in facts if not f.genre), said,
                           {"embedder": embedder, "k": k, "min_confidence": min_confidence, "covers": len(facts)})
    return write_suggestions(report, workspace.reports_dir) if write else report


def available_signals(registry: Registry, kept: Kept) -> tuple[dict[str, GenreModel], list[str]]:
    """Every registered genre signal that can be had (built once, kept), and why the others cannot."""
    from coverlens.errors import CoverlensError

    found: dict[str, GenreModel] = {}
    notes: list[str] = []
    for spec in registry.signals():
        try:
            found[spec.name] = kept.signal(spec.name)
        except CoverlensError as exc:
            notes.append(f"{spec.name} ({spec.label}) left out: {exc}")
    return found, notes


def read_suggestions(reports_dir: Path) -> dict[str, Any] | None:
    """The last suggestions written (the JSON), or None."""
    from coverlens.workspace import read_json

    path = reports_dir / JSON_NAME
    return read_json(path) if path.exists() else None


def suggestions_csv(report: SuggestReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(report.signal_names), lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows())
    return buffer.getvalue()


def write_suggestions(report: SuggestReport, reports_dir: Path) -> SuggestReport:
    """Write suggestions.csv and suggestions.json into `reports_dir` (atomically); the report names them."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    report.csv, report.json = reports_dir / CSV_NAME, reports_dir / JSON_NAME
    write_text_atomic(report.csv, suggestions_csv(report))
    write_json_atomic(report.json, {"params": report.params, "classes": report.classes,
                                    "signals": report.signal_names, "unlabelled": report.unlabelled,
                                    "notes": report.notes, "columns": columns(report.signal_names),
                                    "suggestions": report.rows()})
    return report
