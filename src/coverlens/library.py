"""Genre folders and CSV manifests; kept as the old import path of `coverlens.sources`.

New code imports from `coverlens.sources` (which also reads music collections and Calibre).
"""

from __future__ import annotations

from coverlens.sources.base import SYSTEM_FILES, LibraryEntry, LibraryListing, is_hidden_or_system
from coverlens.sources.folders import scan_folder
from coverlens.sources.manifest import MANIFEST_OPTIONAL, MANIFEST_REQUIRED, read_manifest

__all__ = ["MANIFEST_OPTIONAL", "MANIFEST_REQUIRED", "SYSTEM_FILES", "LibraryEntry", "LibraryListing",
           "is_hidden_or_system", "read_manifest", "scan_folder"]
