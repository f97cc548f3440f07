"""Complete, or flagged: what readers say about a collection an index run has not finished, and
the guard that keeps a report made from a complete store from being replaced by one made from a
half-filled store.

An index run marks each collection it writes incomplete before its first write and complete at
its end (coverlens.store.collection), so a killed run leaves the flag. `similar`, `predict` and
`suspects` still answer from the covers stored so far, but say so (stderr, a "warnings" field in
--json, SearchResult.notes in the app); `clusters` and `evaluate` record in their reports whether
the store was complete, and refuse to overwrite a complete-store report with an incomplete-store
one unless --allow-incomplete.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.errors import StoreError

if TYPE_CHECKING:
    from coverlens.store import CoverCollection

STORE_COMPLETE = "store_complete"  # key recorded in cluster report params and evaluation settings
STORE_INCOMPLETE = "store_incomplete"  # why, when it was not


class IncompleteStoreError(StoreError):
    """A report from a complete store would be replaced by one from an incomplete store (exit 8)."""


def incomplete_warning(reason: str, stored: int | None = None) -> str:
    counted = f"the {stored:,} covers stored so far" if stored is not None else "the covers stored so far"
    return (f"the store is incomplete ({reason}): answers come from {counted} only; "
            "run `coverlens index` to finish it")


def collection_warnings(collection: CoverCollection) -> list[str]:
    """One warning when `collection` is flagged incomplete, else none."""
    reason = collection.incomplete_reason
    return [] if reason is None else [incomplete_warning(reason, collection.count())]


def store_state(reasons: dict[str, str]) -> dict[str, Any]:
    """What a report records about the store it was made from (collection -> why incomplete)."""
    return {STORE_COMPLETE: not reasons, STORE_INCOMPLETE: dict(reasons)}


def guard_replacement(existing: Path, reasons: dict[str, str], allow_incomplete: bool, what: str,
                      recorded: dict[str, Any] | None) -> None:
    """Refuse to replace `existing` (made from a complete store: `recorded` is its store state, None
    when it has none) with a report from an incomplete store, unless `allow_incomplete`."""
    if not reasons or allow_incomplete or not existing.exists():
        return
    if recorded is not None and recorded.get(STORE_COMPLETE, True) is False:
        return  # it was made from an incomplete store too: nothing better is lost
    why = "; ".join(f"{name}: {reason}" for name, reason in sorted(reasons.items()))
    raise IncompleteStoreError(
        f"not replacing {what} {existing}, made from a complete store, with one from an incomplete store "
        f"({why}); finish the store with `coverlens index` and re-run, or pass --allow-incomplete to "
        "replace it anyway")
