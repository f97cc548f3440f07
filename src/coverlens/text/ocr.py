"""Read the text printed on a cover with RapidOCR (PP-OCRv4 det/cls/rec ONNX models from its wheel).

`rapidocr_onnxruntime` 1.4.x carries its models inside the wheel, so nothing is fetched at run time.
One `OcrReader` holds three onnxruntime sessions; build it once per worker process (about 1 s).
Threads are set explicitly (one per worker process by default): the stage runs one process per core,
and onnxruntime's default of "all cores" per process oversubscribes the CPU and has been seen to hang
in containers.

Everything here is pure given the image: the reader's `identity` (package version plus the settings
that change what is read) is stored with every result, so a change of reader is noticed and re-read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverlens.images import open_image

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MIN_CONFIDENCE = 0.5
# Measured on album-covers-5 (300 px covers), see benchmarks/bench_text.py --det-sizes: the short
# side is scaled to this many pixels for detection (RapidOCR's default is 736).
DEFAULT_DET_SIDE = 736
# Covers are shrunk before OCR to a short side of `det_side` and a long side of at most this: a
# 6000x6000 cover would otherwise be detected at full size (seconds and hundreds of MiB).
MAX_OCR_SIDE = 2000


@dataclass(frozen=True)
class OcrSettings:
    """What decides the text read from a cover (threads change speed only, so are not identity)."""

    det_side: int = DEFAULT_DET_SIDE
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    max_side: int = MAX_OCR_SIDE
    use_angle_cls: bool = True
    threads: int = field(default=1, compare=False)

    def identity_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.pop("threads")
        return fields


@dataclass(frozen=True)
class TextLine:
    """One line of text: the words, a 4-point box in the original image's pixels, the confidence."""

    text: str
    box: tuple[tuple[float, float], ...]
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "box": [list(p) for p in self.box], "confidence": round(self.confidence, 4)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TextLine:
        return cls(str(data["text"]), tuple(tuple(float(v) for v in p) for p in data["box"]), float(data["confidence"]))


def joined_text(lines: list[TextLine]) -> str:
    """The lines in reading order (RapidOCR sorts them top-to-bottom), one per line."""
    return "\n".join(line.text for line in lines if line.text.strip())


def reader_identity(settings: OcrSettings) -> str:
    """A short stable string naming the package version and the settings that decide the text."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = f"rapidocr_onnxruntime=={version('rapidocr_onnxruntime')}"
    except PackageNotFoundError:
        package = "rapidocr_onnxruntime==missing"
    facts = json.dumps(settings.identity_fields(), sort_keys=True)
    digest = hashlib.sha256(facts.encode()).hexdigest()[:10]
    return f"{package};det{settings.det_side};conf{settings.min_confidence:g};{digest}"


def fit_for_ocr(image: Image.Image, short_side: int, max_side: int) -> tuple[Image.Image, float]:
    """Shrink a large image so its short side is `short_side` (and its long side at most `max_side`).

    Detection runs at (at least) `short_side` on its short side anyway; a larger input only costs
    time and memory (a 6000x6000 cover would be detected at full size). Returns the image and the
    scale from its pixels back to the original's.
    """
    width, height = image.size
    scale = min(1.0, short_side / min(width, height), max_side / max(width, height))
    if scale >= 1.0:
        return image, 1.0
    from PIL import Image as PILImage

    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = image.resize(size, PILImage.BILINEAR, reducing_gap=2.0)  # reduce by blocks first: fast on huge covers
    return small, 1.0 / scale


class OcrReader:
    """RapidOCR behind one call: `read(path_or_image) -> list[TextLine]`."""

    def __init__(self, settings: OcrSettings | None = None) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.settings = settings or OcrSettings()
        self.identity = reader_identity(self.settings)
        s = self.settings
        self._engine = RapidOCR(
            intra_op_num_threads=s.threads,
            inter_op_num_threads=s.threads,
            det_limit_side_len=s.det_side,
            det_limit_type="min",
            text_score=s.min_confidence,
            max_side_len=s.max_side,
            print_verbose=False,
        )

    def read(self, source: Path | str | bytes | Image.Image) -> list[TextLine]:
        """The lines read on a cover; an unusable file raises `ImageError` naming it."""
        image = source if hasattr(source, "size") and hasattr(source, "mode") else open_image(source)
        image = image.convert("RGB") if image.mode != "RGB" else image
        if min(image.size) < 8:  # nothing legible fits; RapidOCR would upscale noise
            return []
        small, back = fit_for_ocr(image, self.settings.det_side, self.settings.max_side)
        raw, _elapsed = self._engine(small, use_cls=self.settings.use_angle_cls)
        return self._lines(raw or [], back)

    def _lines(self, raw: list[Any], back: float) -> list[TextLine]:
        lines = []
        for box, text, score in raw:
            confidence = float(score)
            text = str(text).strip()
            if not text or confidence < self.settings.min_confidence:
                continue
            points = tuple((round(float(x) * back, 1), round(float(y) * back, 1)) for x, y in box)
            lines.append(TextLine(text, points, confidence))
        return lines
