"""The service's side of the words on the covers: the text stage of `index`, text search, the words
read on one cover with the text model's and the fused genres, and training the text signal.

A part of `CoverlensService` (split out to keep each module small); it relies on the service's
`workspace`, `kept`, `classifier()`, `read_query()` and `cover_path()`. A library cover's words come
from the text stage's store at once (its content id is the key); any other cover is read by the
process's one warm OCR reader (`coverlens.text.signals.shared_reader`), built on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from coverlens.defaults import PREDICT_TOP_K, READ_TEXT, SEARCH_K
from coverlens.errors import ArgumentError, CoverlensError
from coverlens.service_api import ProgressCallback, Source, TextEvidence, TextMatch, iterate_with

if TYPE_CHECKING:
    import numpy as np

    from coverlens.text.stage import TextStageSummary
    from coverlens.text.workspace_training import TextTraining

TEXT_ENV = "COVERLENS_TEXT"  # 0: `index` does not read text unless asked
NO_WORDS = "no legible text on this cover: the prediction is the head's alone"


def text_wanted(asked: bool | None) -> bool:
    """`index`'s choice: what was asked, else $COVERLENS_TEXT, else the default."""
    if asked is not None:
        return asked
    return os.environ.get(TEXT_ENV, "").strip() not in ("0", "no", "off", "false") and READ_TEXT


class TextJobs:
    """Mixed into `CoverlensService`."""

    _catalog_rows: tuple[Any, dict[str, tuple[str, str, str]]] | None = None

    # -- the text stage (part of `index`) --------------------------------------------------------
    def _read_text(self, progress: ProgressCallback | None, ray: str | None = None) -> TextStageSummary:
        """Read the catalogued covers not yet stored (`ray`: OCR on the Ray cluster at that address);
        forget covers gone from the catalog. The caller holds the workspace writer lock."""
        from coverlens.text.stage import read_workspace_text

        reads = None
        if ray:
            from coverlens.text.ray_reads import read_on_ray

            reads = read_on_ray(ray)
        return read_workspace_text(self.workspace.root, progress=iterate_with(progress, "text"), reads=reads)

    # -- one cover ---------------------------------------------------------------------------------
    def _words(self, image: Any, query_id: str | None) -> tuple[list[str], str]:
        """(lines, origin): the stored lines of a library cover, else the lines read now."""
        from coverlens.text.signals import shared_reader
        from coverlens.text.store import text_db_path

        if query_id and text_db_path(self.workspace.root).exists():
            from coverlens.text.stage import text_store_for

            with text_store_for(self.workspace.root, readonly=True) as store:
                stored = store.get([query_id]).get(query_id)
            if stored is not None and not stored.error:
                return [line.text for line in stored.lines], "stored"
        return [line.text for line in shared_reader().read(image)], "read"

    def read_words(self, source: Source) -> TextEvidence:
        """The words on a cover (stored for a library cover, else read now by OCR) with the text model's
        and the fused genres: the app's second update after a search."""
        image, query_id = self.read_query(source)
        return self._text_evidence(image, query_id)

    def _text_evidence(self, image: Any, query_id: str | None, head_proba: np.ndarray | None = None,
                       k: int = PREDICT_TOP_K) -> TextEvidence:
        from coverlens.classifier.predict import top_k
        from coverlens.registry import has_model
        from coverlens.text.metadata import with_metadata

        try:
            words, origin = self._words(image, query_id)
        except (CoverlensError, ImportError) as exc:  # OCR unavailable: the head still answers
            return TextEvidence([], "", notes=[f"the words could not be read: {exc}"])
        evidence = TextEvidence(words, origin)
        try:
            text = self.kept.signal("text")
            metadata = text.metadata_of(query_id)
            joined = with_metadata("\n".join(words), metadata)
            proba, present = text.proba_of_texts([joined])
        except CoverlensError as exc:
            evidence.notes.append(str(exc))
            return evidence
        if metadata:
            shown = metadata.strip().replace("\n", " / ")
            evidence.notes.append(f"the text model also read this cover's metadata: {shown}")
        evidence.weights = dict(text.weights)
        if present[0]:
            evidence.scores = top_k(proba[0], text.classes, min(k, len(text.classes)))
        else:
            evidence.notes.append(NO_WORDS)
        if not has_model(self.workspace):
            return evidence
        try:
            fused = self.kept.signal("fused")
            if head_proba is None:
                head_proba = self.classifier().predict_proba([image])[0]
            combined = fused.fuse(head_proba[None, :], [joined])[0]
        except CoverlensError as exc:
            evidence.notes.append(str(exc))
            return evidence
        evidence.fused = top_k(combined, fused.classes, min(k, len(fused.classes)))
        return evidence

    # -- text search -------------------------------------------------------------------------------
    def _catalog_index(self) -> dict[str, tuple[str, str, str]]:
        """id -> (path, genre, source) of the catalogued covers, reloaded when the catalog file changes."""
        from coverlens.catalog import distinct_covers, load_catalog

        stamp = self.workspace.catalog_file.stat().st_mtime_ns if self.workspace.catalog_file.exists() else None
        if self._catalog_rows is None or self._catalog_rows[0] != stamp:
            rows: dict[str, tuple[str, str, str]] = {}
            if stamp is not None:
                covers = distinct_covers(load_catalog(self.workspace))
                rows = {cid: (path, genre if isinstance(genre, str) else "", source if isinstance(source, str) else "")
                        for cid, path, genre, source in zip(covers["id"], covers["path"], covers["genre"],
                                                            covers["source"], strict=True)}
            self._catalog_rows = (stamp, rows)
        return self._catalog_rows[1]

    def find(self, query: str, *, k: int = SEARCH_K, offset: int = 0) -> list[TextMatch]:
        """Covers whose printed words or metadata text (album/artist, book title/author) match `query`,
        best first (BM25 over trigram indexes: tolerates OCR errors and missing spaces); covers no longer
        in the catalog, and metadata the catalog no longer says, are left out."""
        from coverlens.text.metadata import catalog_metadata
        from coverlens.text.stage import text_store_for

        if k < 1 or offset < 0:
            raise ArgumentError(f"k must be at least 1 and offset at least 0, got {k} and {offset}")
        rows = self._catalog_index()
        current = catalog_metadata(self.workspace)
        found: list[TextMatch] = []
        with text_store_for(self.workspace.root, readonly=True) as store:
            # a changed catalog may leave a few stored texts behind until the next index: ask for more
            for hit in store.find(query, limit=k + offset + 20, offset=0):
                if hit.id not in rows:
                    continue
                kinds = hit.kind.split("+")
                if "metadata" in kinds and current.get(hit.id, "") != hit.metadata:
                    kinds.remove("metadata")  # stale: the library's tags changed since `index`
                    if not kinds:
                        continue
                path, genre, source = rows[hit.id]
                metadata = current.get(hit.id, "")
                found.append(TextMatch(hit.id, hit.score, path, genre, hit.text, hit.snippet, hit.exact,
                                       self._file(path), "+".join(kinds), metadata,
                                       hit.metadata_snippet if "metadata" in kinds else "", source or "file"))
        return found[offset:offset + k]

    def _file(self, relpath: str) -> Any:
        try:
            return self.cover_path(relpath)
        except CoverlensError:
            return None

    # -- training ----------------------------------------------------------------------------------
    def train_text(self, progress: ProgressCallback | None = None) -> TextTraining:
        """Train the text model and choose the fusion weights beside the current fastai model."""
        from coverlens.locks import workspace_writer
        from coverlens.text.workspace_training import train_text_signal

        with workspace_writer(self.workspace, "train"):
            return train_text_signal(self.workspace, self.classifier(),
                                     progress=iterate_with(progress, "head on validation covers"),
                                     say=(lambda message: progress(0.0, message)) if progress else (lambda m: None))
