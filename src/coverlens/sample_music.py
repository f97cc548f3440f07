"""Tiny, valid, tagged audio files made in code (no encoder needed): MP3, FLAC, M4A and Ogg Opus.

For tests and benchmarks of the music source, and for trying `coverlens catalog` on a music
collection without one. The files hold tags and pictures and almost no audio: a few silent MPEG
frames, a FLAC STREAMINFO block, an MP4 `moov` header, or an Opus header, then mutagen writes
the tags as it would on real files.
"""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MP3_FRAME = b"\xff\xfb\x90\x00" + bytes(413)  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz, silent
FORMATS = ("mp3", "flac", "m4a", "opus")


def _atom(name: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + name + payload


def _bare(fmt: str) -> bytes:
    """A minimal file of the format, without tags."""
    if fmt == "mp3":
        return MP3_FRAME * 3
    if fmt == "flac":
        info = (44100 << 44) | (1 << 41) | (15 << 36)  # rate, channels-1, bits-1, 0 samples
        streaminfo = struct.pack(">HH", 4096, 4096) + bytes(6) + info.to_bytes(8, "big") + bytes(16)
        return b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo
    if fmt == "m4a":
        mvhd = _atom(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, 0) + struct.pack(">IH", 0x10000, 0x100)
                     + bytes(70) + struct.pack(">I", 2))
        return _atom(b"ftyp", b"M4A " + bytes(4) + b"M4A isommp42") + _atom(b"moov", mvhd) + _atom(b"mdat", b"")
    if fmt == "opus":
        from mutagen.ogg import OggPage

        pages = []
        head = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", 312, 48000, 0, 0)
        tags = b"OpusTags" + struct.pack("<I", 9) + b"coverlens" + struct.pack("<I", 0)
        for sequence, packet in enumerate((head, tags, b"\xfc\xff\xfe")):
            page = OggPage()
            page.serial, page.sequence, page.packets = 0xC0FE, sequence, [packet]
            page.first, page.last, page.position = sequence == 0, sequence == 2, 960 if sequence == 2 else 0
            pages.append(page.write())
        return b"".join(pages)
    raise ValueError(f"unknown format {fmt!r} (choose one of {', '.join(FORMATS)})")


def write_track(path: Path, *, genres: Sequence[str] = (), album: str = "", artist: str = "",
                album_artist: str = "", pictures: Sequence[tuple[bytes, int]] = ()) -> Path:
    """Write a tagged track; the format follows the extension (.mp3 .flac .m4a .opus/.ogg).

    `pictures` holds (image bytes, picture type); type 3 is a front cover (MP4 has no types).
    """
    fmt = {"ogg": "opus"}.get(path.suffix.lower().lstrip("."), path.suffix.lower().lstrip("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_bare(fmt))
    if fmt == "mp3":
        from mutagen.id3 import APIC, ID3, TALB, TCON, TPE1, TPE2

        tag = ID3()
        for frame, value in ((TALB, album), (TPE1, artist), (TPE2, album_artist)):
            if value:
                tag.add(frame(encoding=3, text=[value]))
        if genres:
            tag.add(TCON(encoding=3, text=list(genres)))
        for i, (data, kind) in enumerate(pictures):
            tag.add(APIC(encoding=3, mime="image/jpeg", type=kind, desc=f"p{i}", data=data))
        tag.save(path, v2_version=3)  # ID3v2.3 keeps "(17)"-style genres as written
        return path
    if fmt == "m4a":
        from mutagen.mp4 import MP4, MP4Cover

        audio = MP4(path)
        for atom, value in (("\xa9alb", album), ("\xa9ART", artist), ("aART", album_artist)):
            if value:
                audio[atom] = [value]
        if genres:
            audio["\xa9gen"] = list(genres)
        if pictures:
            audio["covr"] = [MP4Cover(data, imageformat=MP4Cover.FORMAT_JPEG) for data, _ in pictures]
        audio.save()
        return path
    from mutagen.flac import FLAC, Picture
    from mutagen.oggopus import OggOpus

    audio = FLAC(path) if fmt == "flac" else OggOpus(path)
    for key, value in (("album", album), ("artist", artist), ("albumartist", album_artist)):
        if value:
            audio[key] = [value]
    if genres:
        audio["genre"] = list(genres)
    blocks = []
    for data, kind in pictures:
        picture = Picture()
        picture.type, picture.mime, picture.data = kind, "image/jpeg", data
        if fmt == "flac":
            audio.add_picture(picture)
        else:
            blocks.append(base64.b64encode(picture.write()).decode("ascii"))
    if blocks:
        audio["metadata_block_picture"] = blocks
    audio.save()
    return path


def cover_jpeg(seed: int, size: int = 32) -> bytes:
    """A small distinct JPEG (noise seeded by `seed`)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def make_sample_music(root: Path, *, albums: int, tracks_per_album: int, genres: Sequence[str] = (
        "Rock", "Jazz", "Hip-Hop", "Classical"), seed: int = 0) -> int:
    """A collection root/<artist>/<album>/NN.<ext>: formats rotate per album, every other album has
    its picture embedded in each track, the others a folder.jpg. Returns the number of tracks."""
    written = 0
    for a in range(albums):
        fmt = FORMATS[a % len(FORMATS)]
        folder = Path(root) / f"Artist {a % 37:02d}" / f"Album {a:04d}"
        art = cover_jpeg(seed * 100_003 + a)
        embedded = (a // len(FORMATS)) % 2 == 0  # every format both ways
        if not embedded:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "folder.jpg").write_bytes(art)
        for t in range(tracks_per_album):
            write_track(folder / f"{t + 1:02d}.{fmt}", genres=[genres[a % len(genres)]], album=f"Album {a:04d}",
                        artist=f"Artist {a % 37:02d}", pictures=[(art, 3)] if embedded else ())
            written += 1
    return written
