"""The words a library's metadata holds about a cover, as one text: `metadata_text(row)`.

Music collections keep the album title and artist, Calibre libraries the book title and authors
(catalog columns `title` and `creator`); genre folders and manifests have none, and give "". The
text genre model and the text search take this text beside the words read on the cover (OCR):
a title such as "Greatest Country Hits" or an author's name often says more than the picture.

The text is the title, then the creator, on one line each (so a search can tell them apart and an
n-gram model does not join the last word of one to the first of the other), with runs of white
space made single. Genres are left out on purpose: the text model must not read its answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

FIELDS = ("title", "creator")  # catalog columns, in the order they are written
_SPACE = re.compile(r"\s+")


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # pandas' empty cell
        return ""
    return _SPACE.sub(" ", str(value)).strip()


def metadata_text(row: Mapping[str, Any]) -> str:
    """The title and creator of a catalog row (a dict, or a pandas row), one per line; "" when none."""
    return "\n".join(text for text in (_clean(row.get(name)) for name in FIELDS) if text)
