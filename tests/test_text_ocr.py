"""The OCR reader on generated covers: drawn words are read; blank, 1x1, huge and broken files behave."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from coverlens.errors import ImageError
from coverlens.text.ocr import OcrReader, OcrSettings, joined_text, reader_identity
from text_covers import word_cover


@pytest.fixture(scope="module")
def reader() -> OcrReader:
    return OcrReader(OcrSettings())


def squeeze(text: str) -> str:
    return "".join(text.upper().split())


def test_reads_the_drawn_words_with_boxes_and_confidences(reader: OcrReader) -> None:
    lines = reader.read(word_cover(["JAZZ", "QUARTET"], size=240))
    text = squeeze(joined_text(lines))
    assert "JAZZ" in text and "QUARTET" in text
    for line in lines:
        assert line.confidence >= 0.5
        assert len(line.box) == 4
        assert all(0 <= x <= 240 and 0 <= y <= 240 for x, y in line.box)


def test_reads_from_a_path_and_from_bytes(reader: OcrReader, tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    word_cover(["METAL"], size=200).save(path)
    assert "METAL" in squeeze(joined_text(reader.read(path)))
    assert "METAL" in squeeze(joined_text(reader.read(path.read_bytes())))


def test_blank_and_one_pixel_covers_have_no_text(reader: OcrReader) -> None:
    assert reader.read(Image.new("RGB", (300, 300), (255, 255, 255))) == []
    assert reader.read(Image.new("RGB", (300, 300), (0, 0, 0))) == []
    assert reader.read(Image.new("RGB", (1, 1), (10, 10, 10))) == []
    assert reader.read(Image.new("L", (3, 500), 0)) == []


def test_a_6000px_cover_is_shrunk_and_its_boxes_are_in_original_pixels(reader: OcrReader, tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    word_cover(["OPERA"], size=6000, font_size=900).save(path, quality=80)
    lines = reader.read(path)
    assert "OPERA" in squeeze(joined_text(lines))
    xs = [x for line in lines for x, _ in line.box]
    assert max(xs) > 2000  # mapped back to the 6000 px original, not the 736 px copy read


def test_a_broken_file_is_an_image_error_naming_it(reader: OcrReader, tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        reader.read(path)


def test_identity_names_the_package_and_the_settings_that_change_the_text() -> None:
    base = reader_identity(OcrSettings())
    assert base.startswith("rapidocr_onnxruntime==1.4.")
    assert reader_identity(OcrSettings(threads=2)) == base  # speed only
    assert reader_identity(OcrSettings(det_side=480)) != base
    assert reader_identity(OcrSettings(min_confidence=0.7)) != base
