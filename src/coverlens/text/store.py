"""The text read from covers, in SQLite: one row per cover content id, and a ranked trigram index.

Layout (`<workspace>/text/text.db`):
- `covers(id PRIMARY KEY, reader, lines JSON, text, error)`: `lines` keeps every line's text, box and
  confidence; `error` is set (and `text` empty) for a cover that could not be read.
- `covers_fts`: an FTS5 table over `text` with `tokenize="trigram"`, kept in step by triggers; it
  matches inside words, so "completeworks" finds "COMPLETEWORKS WITHCLARINET" and missing spaces
  do not matter. BM25 ranks the hits.

WAL journal: readers in other processes see each committed batch and never block the writer; a
`kill -9` loses at most the batch in flight and never corrupts (SQLite's own guarantee).

Search: a query of 3+ characters first runs as an exact phrase (every trigram of the query, in
order); if that finds fewer than `limit` covers, the rest come from a trigram OR-query ranked by
BM25, which tolerates OCR errors and typos (most trigrams of a misspelt word still match). Queries
of 1-2 characters cannot use trigrams and fall back to a LIKE scan, ranked by text length.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coverlens.errors import StoreError
from coverlens.text.ocr import TextLine, joined_text

SCHEMA_VERSION = 1
CANDIDATES = 1000  # matches ranked per query (see TextStore._match)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS covers(
    id TEXT PRIMARY KEY, reader TEXT NOT NULL, lines TEXT NOT NULL, text TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '');
CREATE VIRTUAL TABLE IF NOT EXISTS covers_fts USING fts5(
    text, content='covers', content_rowid='rowid', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS covers_ai AFTER INSERT ON covers BEGIN
    INSERT INTO covers_fts(rowid, text) VALUES (new.rowid, new.text); END;
CREATE TRIGGER IF NOT EXISTS covers_ad AFTER DELETE ON covers BEGIN
    INSERT INTO covers_fts(covers_fts, rowid, text) VALUES ('delete', old.rowid, old.text); END;
CREATE TRIGGER IF NOT EXISTS covers_au AFTER UPDATE ON covers BEGIN
    INSERT INTO covers_fts(covers_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO covers_fts(rowid, text) VALUES (new.rowid, new.text); END;
"""


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
    """One text search result: higher `score` is better (negated BM25; LIKE hits score 0)."""

    id: str
    score: float
    text: str
    snippet: str
    exact: bool


def text_db_path(workspace_root: Path) -> Path:
    return Path(workspace_root) / "text" / "text.db"


_QUOTE = re.compile(r'"')
_WORD = re.compile(r"\w+")  # the pieces of a query that fuzzy matching uses (no FTS5 syntax, no quotes)


def _phrase(query: str) -> str:
    return '"' + _QUOTE.sub('""', query) + '"'


def _fuzzy_expression(query: str) -> str:
    """An FTS5 expression that tolerates one wrong or missing character per query word.

    Each word (3+ characters) is cut into 3-character pieces; a cover matches the word when it holds
    all pieces but one. ANDed pieces are far more selective than an OR of every trigram.
    """
    clauses = []
    for word in _WORD.findall(query.lower()):
        if len(word) < 3:
            continue
        pieces = [word[i:i + 3] for i in range(0, len(word) - 2, 3)]
        if len(word) % 3:
            pieces.append(word[-3:])
        pieces = list(dict.fromkeys(pieces))
        if len(pieces) == 1:
            clauses.append(_phrase(pieces[0]))
            continue
        for left_out in range(len(pieces)):
            kept = [_phrase(p) for i, p in enumerate(pieces) if i != left_out]
            clauses.append("(" + " AND ".join(kept) + ")")
    return " OR ".join(clauses)


def _trigrams(query: str) -> list[str]:
    """The distinct trigrams inside each word: OCR often drops spaces, so none spans a space."""
    grams = {word[i:i + 3] for word in _WORD.findall(query.lower()) for i in range(len(word) - 2)}
    return sorted(grams)


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
            return max(0, db.executemany("DELETE FROM covers WHERE id = ?", chunk).rowcount)

    # reading -------------------------------------------------------------------------------

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

    def find(self, query: str, limit: int = 20, offset: int = 0) -> list[TextHit]:
        """Covers whose text matches `query`, best first; see the module docstring for the ranking."""
        query = " ".join(query.split())
        if not query or limit <= 0:
            return []
        if len(query) < 3:
            return [_with_snippet(hit, query) for hit in self._like(query, limit, offset)]
        wanted = offset + limit
        hits = self._match(_phrase(query), wanted, exact=True)
        if len(hits) < wanted:
            fuzzy = _fuzzy_expression(query)
            if fuzzy:
                seen = {h.id for h in hits}
                # a loose query: keep only covers sharing at least a third of the query's trigrams
                extra = self._match(fuzzy, wanted + len(seen), exact=False, min_share=(_trigrams(query), 1 / 3))
                hits += [h for h in extra if h.id not in seen]
        return [_with_snippet(hit, query) for hit in hits[offset:wanted]]

    def _match(self, expression: str, limit: int, *, exact: bool,
               min_share: tuple[list[str], float] | None = None) -> list[TextHit]:
        # BM25 over at most CANDIDATES matches: ranking every match of a common word costs 100s of ms
        # at 100k covers; beyond that many matches the first ones found are ranked (documented limit)
        sql = ("SELECT c.id, m.rank, c.text FROM (SELECT rowid, bm25(covers_fts) AS rank FROM covers_fts "
               "WHERE covers_fts MATCH ? LIMIT ?) m JOIN covers c ON c.rowid = m.rowid ORDER BY m.rank LIMIT ?")
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

    def _like(self, query: str, limit: int, offset: int) -> list[TextHit]:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute("SELECT id, text FROM covers WHERE text LIKE ? ESCAPE '\\' LIMIT ?",
                                (f"%{escaped}%", CANDIDATES)).fetchall()
        rows.sort(key=lambda row: (len(row[1]), row[0]))  # shortest texts first: the query is more of them
        return [TextHit(cid, 0.0, text, "", True) for cid, text in rows[offset:offset + limit]]


def highlight(text: str, query: str, width: int = 80) -> str:
    """The part of `text` around what matched, matched runs in [brackets], lines joined by " / ".

    Marks every character covered by the query itself (ignoring case) or, for a loose match, by one
    of its trigrams. FTS5's own snippet() repeats text when trigram tokens overlap, hence this.
    """
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    lowered, covered = flat.lower(), [False] * len(flat)
    pieces = [" ".join(query.lower().split())]
    if pieces[0] not in lowered:
        pieces = _trigrams(query) or [p for p in query.lower().split() if p]
    for piece in pieces:
        start = lowered.find(piece)
        while start >= 0:
            covered[start:start + len(piece)] = [True] * len(piece)
            start = lowered.find(piece, start + 1)
    if not any(covered):
        return flat[:width]
    first = covered.index(True)
    lo = max(0, first - width // 3)
    hi = min(len(flat), lo + width)
    out, inside = [], False
    for i in range(lo, hi):
        if covered[i] != inside:
            out.append("[" if covered[i] else "]")
            inside = covered[i]
        out.append(flat[i])
    if inside:
        out.append("]")
    return ("…" if lo > 0 else "") + "".join(out) + ("…" if hi < len(flat) else "")


def _with_snippet(hit: TextHit, query: str) -> TextHit:
    return TextHit(hit.id, hit.score, hit.text, highlight(hit.text, query), hit.exact)
