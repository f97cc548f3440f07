"""Registered embedders and signals built on first use and kept while their stamp holds."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from coverlens.errors import CoverlensError
from coverlens.registry.specs import BuildContext, GenreModel, Registry, Spec, Unavailable

if TYPE_CHECKING:
    from coverlens.embedders import Embedder


class Kept:
    """Builds registered embedders and signals on first use and keeps them until their stamp changes.

    A failure is kept too (with the stamp it had), so an unreachable weights host is asked once,
    not on every search; a model file that appears later changes the stamp and is picked up.
    `builds` counts constructions (what a warm service must not do again).
    """

    def __init__(self, registry: Registry, context: BuildContext) -> None:
        self.registry, self.context = registry, context
        self._kept: dict[str, tuple[Hashable, Any, CoverlensError | None]] = {}
        self.builds: dict[str, int] = {}
        # Searches run side by side: two first uses must not build one model twice. Only a build
        # (or rebuild) takes the lock; a kept instance is read without it. Re-entrant: building one
        # spec may build another (a fused signal asks for the head).
        self._building = threading.RLock()
        if context.signal is None:
            context.signal = self.signal

    def _get(self, spec: Spec) -> Any:
        stamp = spec.stamp(self.context)
        kept = self._kept.get(spec.name)
        if kept is None or kept[0] != stamp:
            with self._building:
                kept = self._build(spec, stamp)
        if kept[2] is not None:
            raise kept[2]
        return kept[1]

    def _build(self, spec: Spec, stamp: Hashable) -> tuple[Hashable, Any, CoverlensError | None]:
        """Build under the lock; the new instance replaces the old in one assignment."""
        kept = self._kept.get(spec.name)
        if kept is None or kept[0] != stamp:  # another thread may have built it meanwhile
            kept = (stamp, None, None)
            try:
                reason = spec.check(self.context)
                if reason:
                    raise Unavailable(reason)
                self.builds[spec.name] = self.builds.get(spec.name, 0) + 1
                kept = (stamp, spec.build(self.context), None)
            except CoverlensError as exc:
                kept = (stamp, None, exc)
            self._kept[spec.name] = kept
        return kept

    def embedder(self, name: str) -> Embedder:
        return self._get(self.registry.embedder(name))

    def signal(self, name: str) -> GenreModel:
        return self._get(self.registry.signal(name))

    def state(self, name: str) -> tuple[bool | None, str]:
        """(available?, note) without building anything: what the last build gave while its stamp
        holds, else the cheap check (None: not known until it is first used)."""
        spec = self.registry.spec(name)
        kept = self._kept.get(name)
        if kept is not None and kept[0] == spec.stamp(self.context):
            return (kept[2] is None, "" if kept[2] is None else str(kept[2]))
        reason = spec.check(self.context)
        return (False, reason) if reason else (None, "")

    def forget(self) -> None:
        self._kept.clear()
