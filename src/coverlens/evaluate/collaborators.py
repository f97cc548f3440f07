"""The evaluation's collaborators, read from the registry: every genre signal and every embedder
with an evaluation row, built (or taken from the service's kept ones) when they can be had.

Each "cannot have it" (no trained model, no ImageNet weights, no CLIP weights, a module not
installed) becomes a reason string for the report, never a crash or a made-up row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coverlens.errors import CoverlensError

if TYPE_CHECKING:
    from coverlens.embedders import Embedder
    from coverlens.registry import GenreModel, Kept, Registry
    from coverlens.workspace import Workspace


@dataclass
class Collaborators:
    signals: dict[str, GenreModel] = field(default_factory=dict)  # signal name -> model
    embedders: dict[str, Embedder] = field(default_factory=dict)  # embedder name -> embedder
    unavailable: dict[str, str] = field(default_factory=dict)  # evaluation slug -> why it is missing

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `run_evaluation`."""
        return {"signals": dict(self.signals), "embedders": dict(self.embedders),
                "unavailable": dict(self.unavailable)}


def default_kept(workspace: Workspace, registry: Registry) -> Kept:
    """Fresh builders over the workspace's own model (what the service does, without a service)."""
    from coverlens.registry import BuildContext, Kept

    def classifier() -> Any:
        from coverlens.classifier import load_classifier

        return load_classifier(workspace)

    return Kept(registry, BuildContext(workspace, classifier))


def build_collaborators(workspace: Workspace, *, skip: Mapping[str, str] | None = None,
                        registry: Registry | None = None, kept: Kept | None = None) -> Collaborators:
    """Build what can be built; what cannot gets a reason in `unavailable`. `skip` maps a signal or
    embedder name to why it is left out (e.g. "--no-clip given")."""
    from coverlens.registry import REGISTRY

    registry = registry or REGISTRY
    kept = kept or default_kept(workspace, registry)
    found = Collaborators()
    for spec, row in registry.evaluated():
        if spec.name in (skip or {}):
            found.unavailable[row.slug] = (skip or {})[spec.name]
            continue
        is_signal = spec in registry.signals()
        try:
            built = kept.signal(spec.name) if is_signal else kept.embedder(spec.name)
        except CoverlensError as exc:
            found.unavailable[row.slug] = str(exc)
            continue
        except ImportError as exc:  # an optional module not installed
            found.unavailable[row.slug] = f"{exc.name or 'a module'} cannot be imported ({exc})"
            continue
        (found.signals if is_signal else found.embedders)[spec.name] = built
    return found
