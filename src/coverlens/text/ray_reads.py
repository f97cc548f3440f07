"""The text stage's OCR on a Ray cluster: Ray Data actors that each hold one OCR reader.

`read_on_ray(address)` gives a `Reads` for `run_text_stage` (and so for `index --ray`): what to read,
the incremental plan, the batching of writes and the store stay the single-process stage's; only
the OCR runs on the cluster:

    covers (id, root, path, source) -> ReadText (actors: one OcrReader each, one thread, one CPU) -> records

The records come back to the driver as each batch is read, and `run_text_stage` writes them into the
workspace's text store (SQLite, local to the driver) batch by batch, so a stopped run resumes with
the covers still missing, exactly as in one process. OCR with one thread is deterministic, so the
store equals the single-process one. The OCR runs on CPUs (RapidOCR's onnxruntime build); GPU workers
are left to the embed stage. Workers read the covers at the driver's paths (as the embed stage does),
pictures embedded in audio files included (`coverlens.sources.open_cover`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from coverlens.text.ocr import OcrReader, OcrSettings, TextLine
from coverlens.text.stage import Item, Reads, read_text_of
from coverlens.text.store import CoverText

BATCH = 8  # covers per actor call: OCR is ~0.1-0.5 s a cover, so records reach the store steadily


class ReadText:
    """An actor holding one OCR reader; rebuilt every `recycle_after` covers (RapidOCR's memory grows
    over long runs, which is why the local stage recycles its worker processes)."""

    def __init__(self, settings: OcrSettings, recycle_after: int) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
        self.settings, self.recycle_after = settings, recycle_after
        self.reader, self.read = OcrReader(settings), 0

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        records = []
        for item in zip(batch["id"], batch["root"], batch["path"], batch["source"], strict=True):
            if self.read >= self.recycle_after:
                self.reader, self.read = OcrReader(self.settings), 0
            records.append(read_text_of(self.reader, tuple(str(part) for part in item)))  # type: ignore[arg-type]
            self.read += 1
        return {"id": np.array([r.id for r in records], dtype=object),
                "reader": np.array([r.reader for r in records], dtype=object),
                "lines": np.array([_lines_json(r.lines) for r in records], dtype=object),
                "error": np.array([r.error for r in records], dtype=object)}


def _lines_json(lines: list[TextLine]) -> str:
    # full precision (JSON floats round-trip exactly): the records equal the local stage's, not only once stored
    return json.dumps([[line.text, line.box, line.confidence] for line in lines])


def _lines(text: str) -> list[TextLine]:
    return [TextLine(words, tuple(tuple(point) for point in box), confidence)
            for words, box, confidence in json.loads(text)]


def records(batch: dict[str, Any]) -> Iterator[CoverText]:
    """The records of a batch `ReadText` returned, as the reader made them."""
    for cover_id, reader, lines, error in zip(batch["id"], batch["reader"], batch["lines"], batch["error"],
                                              strict=True):
        if error:
            yield CoverText.failed(str(cover_id), str(reader), str(error))
        else:
            yield CoverText.read(str(cover_id), str(reader), _lines(str(lines)))


def text_actors(resources: dict[str, float], settings: OcrSettings, covers: int) -> int:
    """One single-threaded reader per CPU of the cluster, never more than there are batches."""
    per_actor = max(1, settings.threads)
    return max(1, min(int(resources.get("CPU", 1)) // per_actor, -(-covers // BATCH)))


def read_on_ray(address: str) -> Reads:
    """A `Reads` that runs the OCR on the Ray cluster at `address` (`auto`: joined, else a local one)."""

    def reads(todo: list[Item], settings: OcrSettings, workers: int,
              recycle_after: int) -> Iterator[CoverText]:
        import ray.data

        from coverlens.indexer.ray_runner import connect

        actors = text_actors(connect(address), settings, len(todo))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the stage shows its own, per cover
        context.print_on_execution_start = False
        dataset = ray.data.from_items([{"id": c, "root": r, "path": p, "source": s} for c, r, p, s in todo],
                                      override_num_blocks=max(1, -(-len(todo) // BATCH)))
        dataset = dataset.map_batches(ReadText, fn_constructor_kwargs={"settings": settings,
                                                                       "recycle_after": recycle_after},
                                      batch_size=BATCH, batch_format="numpy",
                                      compute=ray.data.ActorPoolStrategy(size=actors),
                                      num_cpus=max(1, settings.threads))
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield from records(batch)

    return reads
