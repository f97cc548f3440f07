"""Which embedders an index run uses, read from the registry: `--embedder all` takes every indexed
embedder that can be had and says why the others are left out; naming one makes its absence an
error. Building them is the caller's (the service keeps what it built)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coverlens.errors import CoverlensError, ModelError
from coverlens.registry import ALL, Unavailable

if TYPE_CHECKING:
    from coverlens.embedders import Embedder
    from coverlens.registry import Registry

@dataclass
class EmbedderChoice:
    embedders: list[Embedder] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out and why, to tell the person


def choose_embedders(registry: Registry, choice: str, build: Callable[[str], Embedder]) -> EmbedderChoice:
    """Embedders for `choice` ("all": whichever can be had; otherwise the one named, or its error).

    `build(name)` gives a registered embedder or raises a CoverlensError saying why it cannot.
    A missing prerequisite that its cheap check names (no model: run `coverlens train`) is told as
    is; a failure to build is introduced by the embedder's `unavailable_prefix`.
    """
    if choice not in registry.index_choices():
        raise ValueError(f"embedder must be one of {', '.join(registry.index_choices())}, not {choice!r}")
    result = EmbedderChoice()
    problems: list[tuple[str, bool]] = []  # (what could not be had and why, whether a step is missing)
    for name in registry.indexed() if choice == ALL else [choice]:
        spec = registry.embedder(name)
        try:
            result.embedders.append(build(name))
        except CoverlensError as exc:
            if choice != ALL:
                raise
            missing = isinstance(exc, Unavailable)
            prefix = "" if missing or str(exc).startswith(spec.unavailable_prefix) else spec.unavailable_prefix
            problems.append((prefix + str(exc), missing))
    if not result.embedders:
        raise ModelError("nothing to index with: " + "; ".join(text for text, _ in problems))
    names = " and ".join(e.name for e in result.embedders)
    result.notes = [f"{text} (indexing {names} only)" if missing
                    else f"{text}; continuing without it (indexing {names} only)" for text, missing in problems]
    return result
