"""The text read from covers, in SQLite: one row per cover content id, and a ranked trigram index.

Layout (`<workspace>/text/text.db`):
- `covers(id PRIMARY KEY, reader, lines JSON, text, error)`: `lines` keeps every line's text, box and
  confidence; `error` is set (and `text` empty) for a cover that could not be read.
- `covers_fts`: an FTS5 table over `text` with `tokenize="trigram"`, kept in step by triggers; it
  matches inside words, so "completeworks" finds "COMPLETEWORKS WITHCLARINET" and missing spaces
  do not matter. BM25 ranks the hits.
- `metadata(id PRIMARY KEY, text)` and `metadata_fts`, the same index over the library's metadata
  text (album and artist, book title and authors; `coverlens.text.metadata`), one row per cover
  that has some. Added in place to a store made before it existed (`meta.metadata`); the schema
  number stays 1, so an older coverlens still opens the store and ignores these tables.

WAL journal: readers in other processes see each committed batch and never block the writer; a
`kill -9` loses at most the batch in flight and never corrupts (SQLite's own guarantee).

Search: a query of 3+ characters first runs as an exact phrase (every trigram of the query, in
order); if that finds fewer than `limit` covers, the rest come from a trigram OR-query ranked by
BM25, which tolerates OCR errors and typos (most trigrams of a misspelt word still match). Queries
of 1-2 characters cannot use trigrams and fall back to a LIKE scan, ranked by text length.
The words and the metadata are searched the same way and ranked together: phrase hits first, then
by score, a cover matching in both getting the sum of its two scores; each hit says where it
matched (`TextHit.kind`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coverlens.errors import StoreError
from coverlens.text.ocr import TextLine, joined_text
from coverlens.text.query import fuzzy_expression, highlight, phrase, trigrams

SCHEMA_VERSION = 1
CANDIDATES = 1000  # matches ranked per query (see TextStore._match)


def _fts_of(table: str) -> str:
    return f"{table}_fts"


def _indexed_table(table: str, columns: str) -> str:
    """A content table and its FTS5 trigram index `<table>_fts` over `text`, kept in step by triggers."""
    fts = _fts_of(table)
    return f"""
CREATE TABLE IF NOT EXISTS {table}({columns});
CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(
    text, content='{table}', content_rowid='rowid', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS {table}_ai AFTER INSERT ON {table} BEGIN
    INSERT INTO {fts}(rowid, text) VALUES (new.rowid, new.text); END;
CREATE TRIGGER IF NOT EXISTS {table}_ad AFTER DELETE ON {table} BEGIN
    INSERT INTO {fts}({fts}, rowid, text) VALUES ('delete', old.rowid, old.text); END;
CREATE TRIGGER IF NOT EXISTS {table}_au AFTER UPDATE ON {table} BEGIN
    INSERT INTO {fts}({fts}, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO {fts}(rowid, text) VALUES (new.rowid, new.text); END;
"""


_SCHEMA = "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);" + _indexed_table(
    "covers", "id TEXT PRIMARY KEY, reader TEXT NOT NULL, lines TEXT NOT NULL, text TEXT NOT NULL, "
    "error TEXT NOT NULL DEFAULT ''")
# added in place to a store made before it existed, in one transaction
_METADATA_SCHEMA = ("BEGIN IMMEDIATE;" + _indexed_table("metadata", "id TEXT PRIMARY KEY, text TEXT NOT NULL")
                    + "INSERT OR IGNORE INTO meta VALUES ('metadata', '1');\nCOMMIT;\n")
WORDS, METADATA = "words", "metadata"  # where a hit matched (TextHit.kind joins them with "+")


@dataclass(frozen=True)
class _Index:
    """A content table and its FTS5 index (`<table>_fts`, as `_indexed_table` creates it)."""

    table: str

    @property
    def fts(self) -> str:
        return _fts_of(self.table)


_INDEXES = {WORDS: _Index("covers"), METADATA: _Index("metadata")}


@dataclass(frozen=True)
class CoverText:
    """What was read on one cover."""

    id: str
    reader: str
    lines: list[TextLine]
    text: str
    error: str = ""

    @classmethod
    def read(cls, cover_id: str, reader: str, lines: list[TextLine]) -> CoverText:
        return cls(cover_id, reader, lines, joined_text(lines))

    @classmethod
    def failed(cls, cover_id: str, reader: str, error: str) -> CoverText:
        return cls(cover_id, reader, [], "", error)

    def text_at(self, min_confidence: float) -> str:
        """The joined text of the lines read with at least this confidence."""
        return joined_text([line for line in self.lines if line.confidence >= min_confidence])

    @property
    def confidence(self) -> float:
        """Mean line confidence weighted by text length; 0 when nothing was read."""
        total = sum(len(line.text) for line in self.lines)
        return sum(len(line.text) * line.confidence for line in self.lines) / total if total else 0.0


@dataclass(frozen=True)
class TextHit:
    """One text search result: higher `score` is better (negated BM25; LIKE hits score 0).

    `text` is everything read on the cover and `snippet` its matched part ("" when the words did
    not match); `metadata` and `metadata_snippet` the same for the metadata text. `kind` says where
    the query matched: "words", "metadata" or "words+metadata".
    """

    id: str
    score: float
    text: str
    snippet: str
    exact: bool
    kind: str = WORDS
    metadata: str = ""
    metadata_snippet: str = ""


def text_db_path(workspace_root: Path) -> Path:
    return Path(workspace_root) / "text" / "text.db"


class TextStore:
    """SQLite text store; one connection per instance (open one per process or thread)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise StoreError(f"no text store at {self.path}; run the text stage (`coverlens index`) first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable up to the last checkpoint
            if not readonly:
                self._db.executescript(_SCHEMA)
                self._check_version()
                self._db.executescript(_METADATA_SCHEMA)  # in place on a store made before it existed
            self._has_metadata = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'metadata_fts'").fetchone() is not None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"text store {self.path} cannot be opened ({exc}); delete it and re-run the text stage") \
                from exc

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise StoreError(f"text store {self.path} has schema {row[0]}, this coverlens reads {SCHEMA_VERSION}; "
                             "delete it and re-run the text stage")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TextStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # writing -------------------------------------------------------------------------------

    def put(self, records: Iterable[CoverText]) -> int:
        """Insert or replace a batch in one transaction: all of it is stored, or none."""
        rows = [(r.id, r.reader, json.dumps([line.to_json() for line in r.lines]), r.text, r.error)
                for r in records]
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO covers(id, reader, lines, text, error) VALUES (?,?,?,?,?)", rows)
        return len(rows)

    def delete(self, ids: Iterable[str]) -> int:
        """Forget covers (gone from the catalog); returns how many were stored."""
        chunk = [(i,) for i in ids]
        with self._transaction() as db:
            # rowcount counts the deleted rows only (total_changes would add the index triggers' rows)
            deleted = max(0, db.executemany("DELETE FROM covers WHERE id = ?", chunk).rowcount)
            if self._has_metadata:
                db.executemany("DELETE FROM metadata WHERE id = ?", chunk)
            return deleted

    def put_metadata(self, texts: Mapping[str, str], remove: Iterable[str] = ()) -> None:
        """Write (insert or replace) and remove metadata texts in one transaction; an empty text removes."""
        self._require_metadata()
        gone = [(cid,) for cid in remove] + [(cid,) for cid, text in texts.items() if not text]
        rows = [(cid, text) for cid, text in texts.items() if text]
        with self._transaction() as db:
            db.executemany("DELETE FROM metadata WHERE id = ?", gone)
            db.executemany("INSERT OR REPLACE INTO metadata(id, text) VALUES (?, ?)", rows)

    def _require_metadata(self) -> None:
        if not self._has_metadata:
            raise StoreError(f"text store {self.path} has no metadata table yet; open it for writing once "
                             "(`coverlens index`) to add it")

    # reading -------------------------------------------------------------------------------

    def metadata(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """id -> stored metadata text (of these ids, or of every cover); {} for a store without the table."""
        if not self._has_metadata:
            return {}
        if ids is None:
            return dict(self._db.execute("SELECT id, text FROM metadata"))
        wanted, found = list(ids), {}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(f"SELECT id, text FROM metadata WHERE id IN ({marks})", part))
        return found

    def readers(self) -> dict[str, str]:
        """id -> reader identity of every stored cover (failures included)."""
        return dict(self._db.execute("SELECT id, reader FROM covers"))

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM covers").fetchone()[0])

    def get(self, ids: Iterable[str]) -> dict[str, CoverText]:
        wanted = list(ids)
        found: dict[str, CoverText] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            marks = ",".join("?" * len(part))
            for cid, reader, lines, text, error in self._db.execute(
                    f"SELECT id, reader, lines, text, error FROM covers WHERE id IN ({marks})", part):
                found[cid] = CoverText(cid, reader, [TextLine.from_json(x) for x in json.loads(lines)], text, error)
        return found

    def texts(self, ids: Iterable[str]) -> list[str]:
        """The joined text of each id, in order; "" where nothing was read or stored."""
        wanted = list(ids)
        found = {cid: rec.text for cid, rec in self.get(wanted).items()}
        return [found.get(cid, "") for cid in wanted]

    def dump(self) -> list[tuple[str, str, str, str, str]]:
        """Every row, sorted by id: used to compare two stores."""
        return list(self._db.execute("SELECT id, reader, lines, text, error FROM covers ORDER BY id"))

    # search --------------------------------------------------------------------------------

    def find(self, query: str, limit: int = 20, offset: int = 0, *, metadata: bool = True) -> list[TextHit]:
        """Covers whose words (and metadata, unless `metadata=False`) match `query`, best first; see the
        module docstring for the ranking."""
        query = " ".join(query.split())
        if not query or limit <= 0:
            return []
        wanted = offset + limit
        kinds = [WORDS, METADATA] if metadata and self._has_metadata else [WORDS]
        return self._merge({kind: self._find_in(_INDEXES[kind], query, wanted) for kind in kinds}, query)[offset:wanted]

    def _find_in(self, index: _Index, query: str, wanted: int) -> list[TextHit]:
        """The first `wanted` hits in one index (no snippets yet)."""
        if len(query) < 3:
            return self._like(index, query, wanted)
        hits = self._match(index, phrase(query), wanted, exact=True)
        if len(hits) < wanted:
            fuzzy = fuzzy_expression(query)
            if fuzzy:
                seen = {h.id for h in hits}
                # a loose query: keep only covers sharing at least a third of the query's trigrams
                extra = self._match(index, fuzzy, wanted + len(seen), exact=False,
                                    min_share=(trigrams(query), 1 / 3))
                hits += [h for h in extra if h.id not in seen]
        return hits[:wanted]

    def _merge(self, found: dict[str, list[TextHit]], query: str) -> list[TextHit]:
        """One hit per cover: phrase hits first, then by score (summed where both texts matched); each
        hit carries both texts (for display) and the snippet of each text that matched."""
        words = {h.id: h for h in found.get(WORDS, [])}
        meta = {h.id: h for h in found.get(METADATA, [])}
        ids = list(dict.fromkeys([*words, *meta]))
        read = {cid: rec.text for cid, rec in self.get([i for i in ids if i not in words]).items()}
        described = self.metadata([i for i in ids if i not in meta])
        merged = []
        for cid in ids:
            w, m = words.get(cid), meta.get(cid)
            matched = [h for h in (w, m) if h is not None]
            text = w.text if w else read.get(cid, "")
            meta_text = m.text if m else described.get(cid, "")
            kind = "+".join(name for name, h in ((WORDS, w), (METADATA, m)) if h is not None)
            merged.append(TextHit(cid, sum(h.score for h in matched), text, highlight(text, query) if w else "",
                                  any(h.exact for h in matched), kind, meta_text,
                                  highlight(meta_text, query) if m else ""))
        merged.sort(key=lambda h: (not h.exact, -h.score))  # stable: LIKE hits keep their order
        return merged

    def _match(self, index: _Index, expression: str, limit: int, *, exact: bool,
               min_share: tuple[list[str], float] | None = None) -> list[TextHit]:
        # BM25 over at most CANDIDATES matches: ranking every match of a common word costs 100s of ms
        # at 100k covers; beyond that many matches the first ones found are ranked (documented limit)
        fts, table = index.fts, index.table
        sql = (f"SELECT c.id, m.rank, c.text FROM (SELECT rowid, bm25({fts}) AS rank FROM {fts} "
               f"WHERE {fts} MATCH ? LIMIT ?) m JOIN {table} c ON c.rowid = m.rowid ORDER BY m.rank LIMIT ?")
        fetch = limit if min_share is None else limit * 4
        try:
            rows = self._db.execute(sql, (expression, CANDIDATES, fetch)).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"text search for {expression!r} failed: {exc}") from exc
        hits = []
        for cid, rank, text in rows:
            if min_share is not None:
                grams, share = min_share
                lowered = text.lower()
                if sum(g in lowered for g in grams) < share * len(grams):
                    continue
            hits.append(TextHit(cid, -float(rank), text, "", exact))
        return hits[:limit]

    def _like(self, index: _Index, query: str, limit: int) -> list[TextHit]:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(f"SELECT id, text FROM {index.table} WHERE text LIKE ? ESCAPE '\\' LIMIT ?",
                                (f"%{escaped}%", CANDIDATES)).fetchall()
        rows.sort(key=lambda row: (len(row[1]), row[0]))  # shortest texts first: the query is more of them
        return [TextHit(cid, 0.0, text, "", True) for cid, text in rows[:limit]]
