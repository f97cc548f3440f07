"""Audio tags through mutagen: the facts a music listing needs, and the bytes of one picture.

One module per external system: everything that touches mutagen is here. A picture is named by
its `source`: "APIC:<n>" (the n-th ID3 APIC frame), "flac-picture:<n>" (FLAC PICTURE block),
"covr:<n>" (MP4 covr atom), "ogg-picture:<n>" (Vorbis/Opus METADATA_BLOCK_PICTURE).
Files are chosen by extension and read by their tag parser only (ID3 for .mp3): the audio data
itself is never decoded or scanned.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

FORMATS = {".mp3": "id3", ".flac": "flac", ".m4a": "mp4", ".m4b": "mp4", ".mp4": "mp4",
           ".ogg": "ogg", ".oga": "ogg", ".opus": "ogg"}
AUDIO_EXTENSIONS = frozenset(FORMATS)
PICTURE_PREFIX = {"id3": "APIC", "flac": "flac-picture", "mp4": "covr", "ogg": "ogg-picture"}
FRONT_COVER = 3  # the picture type of a front cover (ID3, FLAC and Vorbis share the table)


class TagProblem(Exception):
    """A file whose tags cannot be read; the message is for people."""


def _load(path: Path) -> tuple[str, Any]:
    """(format, mutagen object with `.tags`) or raise TagProblem. Only regular files are opened."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise TagProblem(f"not an audio file mutagen is asked to read ({path.suffix or 'no extension'})")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise TagProblem("not a regular file")
    except FileNotFoundError as exc:
        raise TagProblem("file not found") from exc
    except OSError as exc:
        raise TagProblem(f"cannot read file ({exc.strerror or exc})") from exc
    try:
        if kind == "id3":
            from mutagen.id3 import ID3, ID3NoHeaderError

            try:
                return kind, ID3(path)
            except ID3NoHeaderError:
                return kind, None  # an MP3 without tags: no genre, no picture
        if kind == "flac":
            from mutagen.flac import FLAC

            return kind, FLAC(path)
        if kind == "mp4":
            from mutagen.mp4 import MP4

            return kind, MP4(path)
        import mutagen

        found = mutagen.File(path)
        if found is None:
            raise TagProblem("not an Ogg file mutagen recognises")
        return kind, found
    except TagProblem:
        raise
    except PermissionError as exc:
        raise TagProblem("permission denied") from exc
    except OSError as exc:
        raise TagProblem(f"cannot read file ({exc.strerror or exc})") from exc
    except Exception as exc:  # mutagen raises many types on damaged files; all mean "tags unreadable"
        raise TagProblem(f"cannot read tags ({type(exc).__name__}: {exc})") from exc


def _texts(kind: str, tags: Any, names: tuple[str, ...]) -> list[str]:
    """Every text value of the first of `names` the tags hold (ID3 frames, Vorbis keys, MP4 atoms)."""
    if tags is None:
        return []
    for name in names:
        if kind == "id3":
            values = [str(text) for frame in tags.getall(name) for text in frame.text]
        else:
            values = [str(value) for value in (tags.get(name) or [])]
        if values:
            return values
    return []


def _ogg_pictures(tags: Any) -> list[Any]:
    from mutagen.flac import Picture

    pictures = []
    for encoded in (tags.get("metadata_block_picture") or []) if tags is not None else []:
        try:
            pictures.append(Picture(base64.b64decode(encoded)))
        except Exception:  # a damaged picture block: keep its slot so indexes stay stable
            pictures.append(None)
    return pictures


def _pictures(kind: str, audio: Any) -> list[tuple[int, bytes | None]]:
    """(picture type, data) of every picture, in file order."""
    if audio is None:
        return []
    if kind == "id3":
        return [(frame.type, frame.data) for frame in audio.getall("APIC")]
    if kind == "flac":
        return [(p.type, p.data) for p in audio.pictures]
    if kind == "mp4":
        return [(FRONT_COVER, bytes(c)) for c in (audio.tags or {}).get("covr", [])]
    return [(p.type, p.data) if p is not None else (0, None) for p in _ogg_pictures(audio.tags)]


def track_facts(path: Path) -> dict[str, Any]:
    """Album, artist, album artist, raw genre values and picture (source, type) list of one file."""
    kind, audio = _load(path)
    tags = audio if kind == "id3" else getattr(audio, "tags", None)
    if kind == "id3":
        album, artist, album_artist, genres = ("TALB",), ("TPE1",), ("TPE2",), ("TCON",)
    elif kind == "mp4":
        album, artist, album_artist, genres = ("\xa9alb",), ("\xa9ART",), ("aART",), ("\xa9gen",)
    else:
        album, artist, album_artist, genres = ("album",), ("artist",), ("albumartist", "album artist"), ("genre",)
    prefix = PICTURE_PREFIX[kind]
    return {
        "album": next(iter(_texts(kind, tags, album)), "").strip(),
        "artist": next(iter(_texts(kind, tags, artist)), "").strip(),
        "album_artist": next(iter(_texts(kind, tags, album_artist)), "").strip(),
        "genres": _texts(kind, tags, genres),
        "pictures": [[f"{prefix}:{i}", kind_] for i, (kind_, _data) in enumerate(_pictures(kind, audio))],
    }


def picture_bytes(path: Path, source: str) -> bytes:
    """The bytes of the picture `source` names inside the audio file, or raise TagProblem."""
    prefix, _, index = source.partition(":")
    kind, audio = _load(path)
    if prefix != PICTURE_PREFIX[kind] or not index.isdigit():
        raise TagProblem(f"a {kind} file holds no picture called {source!r}")
    pictures = _pictures(kind, audio)
    if int(index) >= len(pictures):
        raise TagProblem(f"picture {source} is no longer in the file (run `coverlens catalog` again)")
    data = pictures[int(index)][1]
    if data is None:
        raise TagProblem(f"picture {source} is damaged (its base64 block does not decode)")
    return data
