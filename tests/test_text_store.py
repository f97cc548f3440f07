"""The SQLite text store: ranked trigram search tolerant to missing spaces and typos, paging, deletes,
other processes seeing writes, a damaged file refused with a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coverlens.errors import StoreError
from coverlens.text.ocr import TextLine
from coverlens.text.store import CoverText, TextStore

BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))
TEXTS = {
    "a1": "COMPLETEWORKS WITHCLARINET\nMozart",
    "b2": "Iron Maiden\nThe Number of the Beast",
    "c3": "Miles Davis Kind of Blue",
    "d4": "BLUE NOTE RECORDS\nArt Blakey",
    "e5": "Beethoven Symphonies 5 & 7",
    "f6": "",
}


def record(cover_id: str, text: str, reader: str = "r1") -> CoverText:
    return CoverText.read(cover_id, reader, [TextLine(line, BOX, 0.9) for line in text.splitlines()])


@pytest.fixture
def store(tmp_path: Path) -> TextStore:
    with TextStore(tmp_path / "text" / "text.db") as opened:
        opened.put(record(cid, text) for cid, text in TEXTS.items())
        yield opened


def ids(hits: list) -> list[str]:
    return [hit.id for hit in hits]


def test_exact_word_ranks_its_cover_first_case_insensitive(store: TextStore) -> None:
    hits = store.find("maiden")
    assert ids(hits) == ["b2"]
    assert hits[0].snippet == "Iron [Maiden] / The Number of the Beast"
    assert hits[0].exact and hits[0].text.startswith("Iron Maiden")


def test_missing_spaces_on_the_cover_or_in_the_query(store: TextStore) -> None:
    assert ids(store.find("complete works"))[0] == "a1"
    assert ids(store.find("with clarinet"))[0] == "a1"
    assert ids(store.find("milesdavis"))[0] == "c3"


def test_typos_and_ocr_errors_fall_back_to_ranked_trigrams(store: TextStore) -> None:
    hits = store.find("beethovem")
    assert ids(hits)[0] == "e5" and not hits[0].exact and hits[0].snippet.startswith("[Beethove]n")
    assert ids(store.find("Iron Maidan"))[0] == "b2"
    assert store.find("zzzqqq") == []


def test_phrase_hits_come_before_loose_hits(store: TextStore) -> None:
    hits = store.find("blue", limit=10)
    assert set(ids(hits)[:2]) == {"c3", "d4"} and all(h.exact for h in hits[:2])


def test_short_queries_and_paging(store: TextStore) -> None:
    assert "e5" in ids(store.find("5"))
    everything = ids(store.find("e", limit=10))
    assert len(everything) == 5  # the empty cover never matches
    page1, page2 = ids(store.find("e", limit=2)), ids(store.find("e", limit=2, offset=2))
    assert page1 + page2 == everything[:4]
    assert store.find("") == [] and store.find("blue", limit=0) == []


def test_quotes_and_fts_syntax_in_queries_are_plain_text(store: TextStore) -> None:
    assert ids(store.find('"iron" OR NOT *'))[:1] == ["b2"]  # its words, not FTS5 syntax; no error
    assert ids(store.find("number of the"))[0] == "b2"


def test_replace_and_delete_keep_the_index_in_step(store: TextStore) -> None:
    store.put([record("b2", "Some Other Band")])
    assert store.find("maiden") == [] and ids(store.find("other band")) == ["b2"]
    assert store.delete(["b2", "nope"]) == 1
    assert store.find("other band") == [] and store.count() == 5


def test_lines_boxes_confidence_and_reader_round_trip(store: TextStore) -> None:
    got = store.get(["a1"])["a1"]
    assert got.reader == "r1" and got.lines[0] == TextLine("COMPLETEWORKS WITHCLARINET", BOX, 0.9)
    assert store.texts(["c3", "missing"]) == ["Miles Davis Kind of Blue", ""]


def test_another_process_sees_committed_writes(tmp_path: Path, store: TextStore) -> None:
    store.put([record("g7", "Kraftwerk Autobahn")])
    code = ("import sys; from coverlens.text.store import TextStore; "
            "s = TextStore(sys.argv[1], readonly=True); print(s.find('autobahn')[0].id)")
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "g7"


def test_a_damaged_file_is_a_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "text.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="text.db"):
        TextStore(bad)
    with pytest.raises(StoreError, match="no text store"):
        TextStore(tmp_path / "missing.db", readonly=True)
