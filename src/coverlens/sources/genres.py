"""Genre normalisation: from messy tag text to one genre per cover (or none: unlabelled).

Rules, in order, for music tags and Calibre tags (`normalise=True`):

1. Each tag value has NULs (ID3v2.4 multi-values) turned into separators and runs of whitespace
   collapsed. A value found in the user's mapping file (see below) is mapped as a whole.
2. Otherwise it is split on `;` `|` `,`, then on `/`, then on `&`. A piece that is a known
   compound ("R&B", "Rock & Roll", "Drum & Bass", "Rhythm & Blues", "Pop/Funk",
   "Singer/Songwriter") or a key of the mapping file is not split further.
3. ID3v1 numeric genres are resolved: "(17)" and "17" are "Rock", "(17)(18)" is Rock then Techno,
   "(17)Heavy Rock" keeps the refinement text "Heavy Rock"; "(RX)" remix and "(CR)" cover are
   not genres and are dropped.
4. Each piece is looked up in the mapping file (case-insensitively); a piece mapped to an empty
   genre is dropped. Unmapped pieces are case-folded and title-cased ("rock" and "ROCK" are
   "Rock", "hip-hop" is "Hip-Hop", "r&b" is "R&B").
5. Placeholders ("Unknown", "Other", "None", "Misc", "Genre", "General", "N/A", "-", "?") are
   dropped. A cover left with no genre is unlabelled.

One value per cover: a track or a book takes its FIRST genre. An album takes the genre most of its
tracks have (ties: the genre mentioned most often in all tags of the album, then the one met
first), see `album_genre`.

Genre folders and CSV manifests (`normalise=False`) keep their labels verbatim; only the mapping
file, when given, is applied to them (whole label, case-insensitive; empty target = unlabelled).

The mapping file maps raw text to a genre: a CSV with a `raw,genre` header, or a JSON object
`{"raw": "genre"}` (null or "" = drop that tag). Keys match case-insensitively after whitespace
is collapsed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coverlens.errors import LibraryError
from coverlens.sources.text_files import TextFileProblem, read_text

PROTECTED = frozenset({"r&b", "r & b", "rock & roll", "drum & bass", "d&b", "rhythm & blues", "pop/funk",
                       "singer/songwriter"})
PLACEHOLDERS = frozenset({"unknown", "<unknown>", "unknown genre", "other", "none", "misc", "miscellaneous",
                          "genre", "general", "n/a", "na", "-", "?", "undefined"})
_SPACE = re.compile(r"\s+")
_NUMERIC = re.compile(r"^\((\d+|RX|CR)\)")
_WORD_START = re.compile(r"(^|[\s\-&/(])([^\W\d_])", re.UNICODE)


def key(text: str) -> str:
    """How raw text is compared: collapsed whitespace, case-folded."""
    return _SPACE.sub(" ", text).strip().casefold()


def title_case(text: str) -> str:
    """'hip-hop' -> 'Hip-Hop', 'r&b' -> 'R&B', '80s pop' -> '80s Pop' (str.title makes that '80S')."""
    return _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), text.lower())


def _id3v1_names() -> Sequence[str]:
    from mutagen._constants import GENRES  # the ID3v1 + Winamp table; stable across mutagen releases

    return GENRES


def resolve_numeric(piece: str) -> list[str]:
    """ID3v1 references: '(17)' / '17' -> ['Rock']; '(17)Heavy' -> ['Heavy']; '(RX)' -> []."""
    if piece.isdigit():
        names = _id3v1_names()
        return [names[int(piece)]] if int(piece) < len(names) else []
    found: list[str] = []
    rest = piece
    while (match := _NUMERIC.match(rest)) is not None:
        code = match.group(1)
        if code.isdigit() and int(code) < len(_id3v1_names()):
            found.append(_id3v1_names()[int(code)])
        rest = rest[match.end():]
    if rest.startswith("(("):  # ID3v2.3 escapes a literal '(' as '(('
        rest = rest[1:]
    if rest.strip():
        return [rest.strip()]  # the refinement text says more than the number
    return found


@dataclass(frozen=True)
class GenreRules:
    """How raw genre text becomes a genre; see the module docstring for the rules."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # key(raw) -> genre ("" = drop)
    normalise: bool = True

    def label(self, raw: str) -> str:
        """A folder or manifest label: verbatim, or its mapping."""
        raw = raw.strip()
        return self.mapping.get(key(raw), raw)

    def _split(self, value: str) -> list[str]:
        pieces: list[str] = []
        for piece in re.split(r"[;|,]", value):
            for sub in [piece] if self._whole(piece) else piece.split("/"):
                pieces.extend([sub] if self._whole(sub) else sub.split("&"))
        return [p.strip() for p in pieces if p.strip()]

    def _whole(self, piece: str) -> bool:
        return key(piece) in PROTECTED or key(piece) in self.mapping

    # tracks of an album repeat the same tag text: normalise each distinct list once
    _memo: dict[tuple[str, ...], list[str]] = field(default_factory=dict, compare=False, repr=False)

    def genres(self, values: Iterable[str]) -> list[str]:
        """The genres a list of tag values holds, in order, without repeats."""
        values = tuple(values)
        if values not in self._memo:
            self._memo[values] = self._genres(values)
        return list(self._memo[values])

    def _genres(self, values: tuple[str, ...]) -> list[str]:
        found: list[str] = []
        for value in values:
            value = _SPACE.sub(" ", str(value).replace("\x00", ";")).strip()
            if not value:
                continue
            if not self.normalise:
                found.append(self.label(value))
                continue
            for piece in [value] if key(value) in self.mapping else self._split(value):
                for name in resolve_numeric(piece):
                    if key(name) in self.mapping:
                        found.append(self.mapping[key(name)])
                    elif key(name) not in PLACEHOLDERS:
                        found.append(title_case(name))
        return list(dict.fromkeys(g for g in found if g))

    def first(self, values: Iterable[str]) -> str:
        """The genre of one track or book: its first genre, or "" (unlabelled)."""
        found = self.genres(values)
        return found[0] if found else ""


def album_genre(track_genres: Sequence[Sequence[str]]) -> str:
    """The genre most tracks have as their first; ties go to the most mentioned, then the first met."""
    firsts = Counter(genres[0] for genres in track_genres if genres)
    if not firsts:
        return ""
    mentions = Counter(g for genres in track_genres for g in genres)
    order = {g: i for i, g in enumerate(dict.fromkeys(g for genres in track_genres for g in genres))}
    return min(firsts, key=lambda g: (-firsts[g], -mentions[g], order[g]))


def load_genre_map(path: Path) -> dict[str, str]:
    """A user mapping file (CSV `raw,genre` or JSON object) as key(raw) -> genre."""
    path = Path(path)
    try:
        text = read_text(path)
    except TextFileProblem as exc:
        raise LibraryError(f"genre map {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        return _json_map(path, text)
    return _csv_map(path, text)


def _json_map(path: Path, text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(f"genre map {path}: line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise LibraryError(f'genre map {path}: expected a JSON object {{"raw tag": "genre"}}')
    bad = [k for k, v in data.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise LibraryError(f"genre map {path}: the value of {bad[0]!r} is not a string or null")
    return {key(k): (v or "").strip() for k, v in data.items()}


def _csv_map(path: Path, text: str) -> dict[str, str]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise LibraryError(f"genre map {path}: line {reader.line_num}: {exc}") from exc
    if not rows or [c.strip().lower() for c in rows[0][1]] != ["raw", "genre"]:
        raise LibraryError(f"genre map {path}: line 1: the header must be `raw,genre` (or use a .json object)")
    mapping: dict[str, str] = {}
    for line, row in rows[1:]:
        if len(row) != 2:
            raise LibraryError(f"genre map {path}: line {line}: {len(row)} fields, expected 2 (raw,genre)")
        mapping[key(row[0])] = row[1].strip()
    return mapping
