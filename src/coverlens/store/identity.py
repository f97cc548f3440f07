"""The model identity a collection records: read it, describe it, refuse a mismatch."""

from __future__ import annotations

import json
from typing import Any

from coverlens.errors import StoreError


def describe_identity(identity: dict[str, Any]) -> str:
    """A one-line human description of a model identity (long hashes shortened)."""
    parts = []
    for key, value in sorted(identity.items()):
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        parts.append(f"{key}={text[:16] + '...' if len(text) > 40 else text}")
    return "{" + ", ".join(parts) + "}"


def stored_identity(collection: Any) -> dict[str, Any]:
    raw = (collection.metadata or {}).get("identity")
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {"unreadable identity": str(raw)}


def check_identity(collection: Any, identity: dict[str, Any], embedder_name: str, location: str) -> None:
    """Refuse a collection filled by another model than `identity`."""
    stored = stored_identity(collection)
    if stored != identity:
        raise StoreError(
            f"collection {collection.name} in {location} holds vectors made by {describe_identity(stored)}, "
            f"but the {embedder_name} embedder now is {describe_identity(identity)}; the two are not "
            f"comparable: re-run `coverlens index --rebuild` (with `--embedder {embedder_name}` to "
            "rebuild only this one)"
        )
