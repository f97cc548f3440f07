"""Does the library's metadata text help the text genre model? Side by side in one run, on generated libraries.

The shared datasets (../shared/datasets) carry no metadata: their files are named by Discogs ids or
numbers and their manifests hold path, genre and image facts only. So no real-set figure exists, and
this benchmark measures on generated music libraries instead, where the answer depends on how the
library is generated. The generator is printed with the results; change it with the options.

A generated library (seeded): `--genres` genres, each with `--artists` artists (made-up names) and a
few genre-leaning words (made-up too); every album has an artist, a title of 2-4 words (each word a
genre-leaning one with probability `--cue`, else from a pool shared by every genre) and a genre
(its artist's, except `--crossover` of albums filed under another genre). The metadata text is the
title and the artist (as `coverlens.sources.metadata_text` gives them: the genre tag never enters).
The words "read on the cover" are simulated OCR: a cover is legible with probability `--legible`;
a legible one prints the artist (p 0.8) and the title (p 0.7) in capitals, loses each space with
probability 0.5 and each letter with probability `--ocr-noise` to a wrong letter, as RapidOCR does.

Per library, one catalog split (80/20), the text model with its default settings fitted on the train
split's inputs and scored on the test split (top-1; a cover with no input gets the train split's
majority genre, as the evaluation's text row does):
- words: the words read alone (the model before metadata);
- words + metadata: what `coverlens train` now fits (TextModelSettings.metadata, the default);
- metadata alone;
- words + uninformative metadata: a control, every album's metadata replaced by a made-up artist of its
  own and a title from the shared pool only (no genre leaning): does metadata that says nothing dilute
  the words? (Metadata shuffled across albums would not be neutral: another album's artist points to
  that album's genre.)
Mean and standard deviation over `--seeds` libraries.

`--real-ocr N` also runs the real path on N albums of the first library: a music collection written
with mutagen, a folder.jpg per album with its printed words drawn on it (Pillow's default font),
`run_catalog`, the text stage (RapidOCR in worker processes), then the stored words and the
catalog's metadata text exactly as `coverlens train` reads them, scored on the catalog's own split.

`--workspace W` also checks a real workspace: how many catalogued covers carry metadata (0 on every
shared set), in which case the model's input, hence the model, is identical with or without it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line  # noqa: E402
from coverlens.sources import metadata_text  # noqa: E402
from coverlens.text.metadata import combine  # noqa: E402
from coverlens.text.model import TextGenreModel, TextModelSettings  # noqa: E402

SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "tor", "sa", "bel", "dun", "ori", "pax", "zel", "mon", "tri", "ash",
             "gu", "fen", "lys", "qua", "ber", "nod", "ith", "cor", "ela", "vim", "ust", "hal", "peb", "rix", "oma")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def word(rng: np.random.Generator, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES, parts))


def make_library(seed: int, args: argparse.Namespace) -> list[dict[str, str]]:
    """Albums: genre, title, creator (artist) and the simulated OCR words of the cover."""
    rng = np.random.default_rng(seed)
    shared = [word(rng, int(rng.integers(2, 4))) for _ in range(120)]
    genres = [f"genre{g}" for g in range(args.genres)]
    leaning = {g: [word(rng, int(rng.integers(2, 4))) for _ in range(12)] for g in genres}
    albums = []
    for genre in genres:
        for _ in range(args.artists):
            artist = f"{word(rng, 2).title()} {word(rng, int(rng.integers(2, 4))).title()}"
            for _ in range(int(rng.integers(1, 2 * args.albums_per_artist))):
                title = " ".join(str(rng.choice(leaning[genre] if rng.random() < args.cue else shared))
                                 for _ in range(int(rng.integers(2, 5)))).title()
                filed = genre if rng.random() >= args.crossover else str(rng.choice(genres))
                neutral = {"title": " ".join(str(rng.choice(shared)) for _ in range(int(rng.integers(2, 5)))).title(),
                           "creator": f"{word(rng, 2).title()} {word(rng, 3).title()}"}
                lines, words = printed(rng, title, artist, args)
                albums.append({"genre": filed, "title": title, "creator": artist, "print": lines,
                               "words": words, "neutral": metadata_text(neutral)})
    return albums


def printed(rng: np.random.Generator, title: str, artist: str, args: argparse.Namespace) -> tuple[list[str], str]:
    """(the lines printed on the cover, what simulated OCR reads of them)."""
    if rng.random() >= args.legible:
        return [], ""
    lines = [text for text, p in ((artist, 0.8), (title, 0.7)) if rng.random() < p]
    out = []
    for text in lines:
        chars = [c if c == " " or rng.random() >= args.ocr_noise else str(rng.choice(list(LETTERS)))
                 for c in text.upper()]
        out.append("".join(c for c in chars if c != " " or rng.random() >= 0.5))
    return lines, "\n".join(out)


def score(train_x: list[str], train_y: list[str], test_x: list[str], test_y: list[str]) -> tuple[float, float]:
    """(top-1 over every test cover, share of test covers with input) for the default text model."""
    model = TextGenreModel.fit(train_x, train_y, TextModelSettings())
    proba, mask = model.predict_proba(test_x)
    values, counts = np.unique(train_y, return_counts=True)
    majority = str(values[int(np.argmax(counts))])
    predicted = [model.classes[int(np.argmax(p))] if ok else majority for p, ok in zip(proba, mask, strict=True)]
    return float(np.mean([p == t for p, t in zip(predicted, test_y, strict=True)])), float(mask.mean())


def run_library(seed: int, args: argparse.Namespace) -> tuple[int, dict[str, tuple[float, float]]]:
    albums = make_library(seed, args)
    rng = np.random.default_rng(seed + 1000)
    order = rng.permutation(len(albums))
    test = set(order[: len(albums) // 5].tolist())
    ids = [str(i) for i in range(len(albums))]
    words = [a["words"] for a in albums]
    meta = {cid: metadata_text(a) for cid, a in zip(ids, albums, strict=True)}  # title + creator, never genre
    neutral = {cid: a["neutral"] for cid, a in zip(ids, albums, strict=True)}
    inputs = {"words": words, "words + metadata": combine(ids, words, meta),
              "metadata alone": [meta[cid] for cid in ids],
              "words + uninformative metadata": combine(ids, words, neutral)}
    genres = [a["genre"] for a in albums]
    results = {}
    for name, texts in inputs.items():
        tr = [i for i in range(len(albums)) if i not in test]
        te = sorted(test)
        results[name] = score([texts[i] for i in tr], [genres[i] for i in tr], [texts[i] for i in te],
                              [genres[i] for i in te])
    return len(albums), results


def real_ocr_run(args: argparse.Namespace, scratch: Path) -> dict[str, tuple[float, float]]:
    """The real path on a smaller library: a music collection (mutagen tags, a folder.jpg with the printed
    lines drawn on it), `run_catalog`, the text stage (RapidOCR), the stored words and the catalog's
    metadata text as `coverlens train` reads them; the catalog's own split."""
    from PIL import Image, ImageDraw, ImageFont

    from coverlens.catalog import distinct_covers, load_catalog, run_catalog
    from coverlens.sample_music import write_track
    from coverlens.text.metadata import catalog_metadata
    from coverlens.text.signals import stored_texts
    from coverlens.text.stage import read_workspace_text
    from coverlens.workspace import Workspace

    albums = make_library(0, args)
    picked = np.random.default_rng(7).permutation(len(albums))[: args.real_ocr]
    font = ImageFont.load_default(size=26)
    for n in picked.tolist():
        album, folder = albums[n], scratch / "music" / f"album{n:04d}"
        write_track(folder / "01.mp3", genres=[album["genre"]], album=album["title"], artist=album["creator"])
        image = Image.new("RGB", (300, 300), (30 + n % 90, 40, 80 + n % 70))
        words = [w for line in album["print"] for w in line.split()]  # one word a line: it fits the width
        draw = ImageDraw.Draw(image)
        for row, text in enumerate(words, start=1):
            draw.text((20, row * 300 // (len(words) + 1) - 13), text, fill=(245, 245, 235), font=font)
        image.save(folder / "folder.jpg", quality=90)
    workspace = Workspace(scratch / "ws")
    run_catalog(workspace, scratch / "music")
    started = time.perf_counter()
    stage = read_workspace_text(workspace.root)
    print(f"real OCR: {stage.describe()} in {time.perf_counter() - started:.0f} s")
    covers = distinct_covers(load_catalog(workspace))
    ids, genres, split = list(covers["id"]), list(covers["genre"]), list(covers["split"])
    words_by_id, meta = stored_texts(workspace, ids), catalog_metadata(workspace)
    words = [words_by_id.get(cid, "") for cid in ids]
    inputs = {"words": words, "words + metadata": combine(ids, words, meta),
              "metadata alone": [meta.get(c, "") for c in ids]}
    tr = [i for i, s in enumerate(split) if s == "train"]
    te = [i for i, s in enumerate(split) if s == "test"]
    return {name: score([x[i] for i in tr], [genres[i] for i in tr], [x[i] for i in te], [genres[i] for i in te])
            for name, x in inputs.items()}


def check_workspace(root: Path) -> None:
    from coverlens.catalog import distinct_covers, load_catalog
    from coverlens.text.metadata import catalog_metadata
    from coverlens.workspace import Workspace

    workspace = Workspace(root)
    covers = distinct_covers(load_catalog(workspace))
    metadata = catalog_metadata(workspace)
    ids = list(covers["id"])
    words = [f"w{i}" for i in range(len(ids))]
    identical = combine(ids, words, metadata) == words
    line(f"workspace {root}", f"{len(metadata):,} of {len(ids):,} covers carry metadata text; model input "
         f"{'identical' if identical else 'DIFFERENT'} with or without metadata")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--genres", type=int, default=5)
    parser.add_argument("--artists", type=int, default=30, help="artists per genre")
    parser.add_argument("--albums-per-artist", type=int, default=4, help="mean albums per artist")
    parser.add_argument("--cue", type=float, default=0.25, help="chance a title word leans to the genre")
    parser.add_argument("--crossover", type=float, default=0.1, help="albums filed under another genre")
    parser.add_argument("--legible", type=float, default=0.85, help="covers with words read (album-covers-5: 0.85)")
    parser.add_argument("--ocr-noise", type=float, default=0.05, help="letters misread")
    parser.add_argument("--real-ocr", type=int, default=0, metavar="ALBUMS",
                        help="also run the real path (catalog, RapidOCR, stored words) on this many albums of seed 0")
    parser.add_argument("--workspace", type=Path, action="append", default=[],
                        help="also report how many of a workspace's covers carry metadata (repeatable)")
    args = parser.parse_args()
    started = time.perf_counter()
    sizes, runs = zip(*(run_library(seed, args) for seed in range(args.seeds)), strict=True)
    print(f"generated music libraries: {args.seeds} seeds, {min(sizes)}-{max(sizes)} albums each, {args.genres} "
          f"genres x {args.artists} artists, cue {args.cue}, crossover {args.crossover}, legible {args.legible}, "
          f"OCR noise {args.ocr_noise}; test split 20%")
    print(f"{'text model input':<44} top-1 mean ± sd (covers with input)")
    for name in runs[0]:
        top1 = np.array([r[name][0] for r in runs])
        cover = np.mean([r[name][1] for r in runs])
        line(name, f"{top1.mean():.3f} ± {top1.std():.3f}  ({cover:.0%})")
    gain = np.array([r["words + metadata"][0] - r["words"][0] for r in runs])
    line("gain of words + metadata over words", f"{gain.mean():+.3f} ± {gain.std():.3f} (ratio "
         f"{np.mean([r['words + metadata'][0] / r['words'][0] for r in runs]):.2f})")
    if args.real_ocr:
        scratch = Path(tempfile.mkdtemp(prefix="bench-metadata-"))
        try:
            for name, (top1, cover) in real_ocr_run(args, scratch).items():
                line(f"real OCR, {args.real_ocr} albums: {name}", f"{top1:.3f}  ({cover:.0%})")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    for root in args.workspace:
        check_workspace(root)
    print(f"({time.perf_counter() - started:.1f} s; real sets: no metadata, so no real-set figure)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
