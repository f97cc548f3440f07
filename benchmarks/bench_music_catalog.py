"""Catalog a generated music collection from scratch, then again unchanged; print both times and the ratio.

Targets (issue: real libraries): 5,000 tracks (tags only, tiny files made in code) catalogue in under
a minute, and an unchanged re-run takes under a tenth of that. The collection mixes MP3, FLAC, M4A
and Ogg Opus; half the albums embed their picture in every track, half have a folder.jpg.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line  # noqa: E402
from coverlens.catalog import run_catalog  # noqa: E402
from coverlens.sample_music import make_sample_music  # noqa: E402
from coverlens.workspace import Workspace  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--albums", type=int, default=500)
    parser.add_argument("--tracks-per-album", type=int, default=10)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-music-"))
    try:
        started = time.perf_counter()
        tracks = make_sample_music(scratch / "music", albums=args.albums, tracks_per_album=args.tracks_per_album)
        made_s = time.perf_counter() - started
        workspace = Workspace(scratch / "ws")
        started = time.perf_counter()
        first = run_catalog(workspace, scratch / "music")
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = run_catalog(workspace, scratch / "music")
        again_s = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"== music catalog benchmark: {tracks:,} generated tracks in {args.albums:,} albums (made in {made_s:.1f} s)")
    line("covers catalogued", f"{first.files:,} ({first.distinct:,} distinct, {first.unreadable} unreadable, "
                              f"source {first.source})")
    line("catalog from scratch (target < 60 s)", f"{first_s:.2f} s {'OK' if first_s < 60 else 'MISSED'}")
    line("re-catalog unchanged", f"{again_s:.3f} s (read {again.read:,}, reused {again.reused:,})")
    ratio = again_s / first_s
    line("ratio re-run / first (target < 0.10)", f"{ratio:.3f} {'OK' if ratio < 0.1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
