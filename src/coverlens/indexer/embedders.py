"""Which embedders an index run uses: `--embedder all` takes whichever can be had and says why the
others are left out; naming one makes its absence an error. The embedders themselves come from
`coverlens.embedders.factory` (the one place that builds real ones)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coverlens.errors import CoverlensError, ModelError, WeightsError

if TYPE_CHECKING:
    from coverlens.embedders import Embedder
    from coverlens.workspace import Workspace

CHOICES = ("all", "finetuned", "clip")


@dataclass
class EmbedderChoice:
    embedders: list[Embedder] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out and why, to tell the person


def build_embedders(workspace: Workspace, choice: str = "all", *, clip_model: str | None = None,
                    clip_pretrained: str | None = None, device: str | None = None,
                    finetuned_loader: Callable[[], Embedder] | None = None,
                    clip_loader: Callable[[], tuple[Embedder | None, str]] | None = None) -> EmbedderChoice:
    """Embedders for `choice` ("all": whichever can be had; otherwise the one named, or an error).

    The loaders default to building fresh embedders; a caller that already holds them (the
    service) passes its own so nothing is loaded twice.
    """
    from coverlens.embedders.factory import NO_MODEL, clip_embedder, finetuned_embedder

    if choice not in CHOICES:
        raise ValueError(f"embedder must be one of {', '.join(CHOICES)}, not {choice!r}")
    result = EmbedderChoice()
    problems: list[str] = []  # what could not be had, and why
    if choice in ("all", "finetuned"):
        try:
            result.embedders.append(finetuned_loader() if finetuned_loader else finetuned_embedder(workspace))
        except CoverlensError as exc:
            if choice == "finetuned":
                raise
            problems.append(str(exc) if str(exc) == NO_MODEL else f"fine-tuned embedder unavailable: {exc}")
    if choice in ("all", "clip"):
        embedder, reason = clip_loader() if clip_loader else clip_embedder(clip_model, clip_pretrained, device)
        if embedder is not None:
            result.embedders.append(embedder)
        elif choice == "clip":
            raise WeightsError(f"CLIP comparator unavailable: {reason}")
        else:
            problems.append(f"CLIP comparator unavailable: {reason}")
    if not result.embedders:
        raise ModelError("nothing to index with: " + "; ".join(problems))
    names = " and ".join(e.name for e in result.embedders)
    result.notes = [f"{problem} (indexing {names} only)" if problem == NO_MODEL
                    else f"{problem}; continuing without it (indexing {names} only)" for problem in problems]
    return result
